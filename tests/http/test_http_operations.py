"""Health, readiness, metrics, the OpenAPI document, routing errors and response headers."""

from __future__ import annotations

import asyncio
import gzip
import re
import uuid
from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp.test_utils import TestClient
from httpkit import Api, MakeUser


async def test_healthz(api: Api) -> None:
    answer = await api.get("/healthz")
    assert answer.status == 200
    assert answer.body == {"status": "ok"}


async def test_readyz_names_every_dependency(api: Api) -> None:
    answer = await api.get("/readyz")
    assert answer.status == 200, answer.text
    assert answer.body["status"] == "ready"
    checks = answer.body["checks"]
    assert checks["database"]["ok"] is True
    assert checks["redis"]["ok"] is True


async def test_metrics_has_runtime_and_http_series(api: Api, make_user: MakeUser) -> None:
    await make_user()
    await api.get("/api/v1/nowhere")
    answer = await api.get("/metrics")
    assert answer.status == 200
    assert answer.headers["Content-Type"].startswith("text/plain")
    text = answer.text
    assert "transakt_runtime_" in text
    assert "transakt_ledger_" in text
    assert re.search(
        r'transakt_http_requests_total\{method="POST",route="/api/v1/auth/signup",status="201"\} '
        r"[1-9]",
        text,
    )
    assert 'route="unmatched",status="404"' in text
    assert "transakt_http_request_duration_seconds_bucket" in text
    # The scrape itself is the one request being handled.
    assert "\ntransakt_http_requests_in_flight 1.0\n" in text
    # The per-app registry: no process-wide default collectors leak in.
    assert "python_gc_objects_collected_total" not in text


async def test_metrics_count_the_answer_clients_got(api: Api) -> None:
    # Ids, metrics, errors and authentication share one middleware: a refused token is still
    # counted under its route with the status of the error answer, which quotes the id.
    refused = await api.get("/api/v1/wallets", headers={"X-Request-Id": "trace-refused-01"})
    assert refused.status == 401
    assert refused.body["error"]["code"] == "unauthorized"
    assert refused.headers["X-Request-Id"] == "trace-refused-01"
    assert refused.headers["WWW-Authenticate"] == 'Bearer realm="transakt"'
    text = (await api.get("/metrics")).text
    assert re.search(
        r'transakt_http_requests_total\{method="GET",route="/api/v1/wallets",status="401"\} '
        r"[1-9]",
        text,
    )
    assert re.search(
        r'transakt_http_request_duration_seconds_count\{method="GET",route="/api/v1/wallets"\} '
        r"[1-9]",
        text,
    )


async def test_openapi_documents_every_registered_route(
    api: Api, wallet_app: TestClient[web.Request, web.Application]
) -> None:
    answer = await api.get("/api/v1/openapi.json")
    assert answer.status == 200
    document = answer.body
    assert document["openapi"].startswith("3.1")
    registered = {
        (route.method.lower(), route.resource.canonical)
        for route in wallet_app.app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }
    documented = {
        (method, path) for path, operations in document["paths"].items() for method in operations
    }
    assert registered <= documented, registered - documented
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    transfer = document["components"]["schemas"]["TransferRequest"]
    assert transfer["properties"]["amount"]["type"] == "integer"
    assert set(transfer["required"]) == {"from_wallet", "amount", "currency"}
    signup = document["components"]["schemas"]["SignupRequest"]
    assert signup["additionalProperties"] is False


async def test_every_documented_reference_resolves(api: Api) -> None:
    answer = await api.get("/api/v1/openapi.json")
    document = answer.body
    references = set(re.findall(r'"\$ref": ?"#/([^"]+)"', answer.text))
    assert references
    for reference in references:
        node = document
        for part in reference.split("/"):
            node = node[part]


async def test_unknown_route_is_404_in_the_error_shape(api: Api) -> None:
    for path in ("/nowhere", "/api/v1/nowhere", "/api/v1/wallets/a/b/c"):
        answer = await api.get(path)
        assert answer.status == 404
        assert answer.error_code == "not_found"


async def test_wrong_method_is_405_in_the_error_shape(api: Api) -> None:
    answer = await api.request("DELETE", "/api/v1/transfers")
    assert answer.status == 405
    assert answer.error_code == "method_not_allowed"
    assert "POST" in answer.headers["Allow"]


async def test_oversized_body_is_413(api: Api) -> None:
    answer = await api.post(
        "/api/v1/auth/signup",
        data=b'{"name": "' + b"x" * 100_000 + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert answer.status == 413
    assert answer.error_code == "payload_too_large"


async def test_a_compressed_body_is_limited_by_its_inflated_size(api: Api) -> None:
    inflated = b'{"email": "' + b"x" * 100_000 + b'"}'
    answer = await api.post(
        "/api/v1/auth/login",
        data=gzip.compress(inflated),  # a few hundred bytes on the wire
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert answer.status == 413
    assert answer.error_code == "payload_too_large"
    small = await api.post(
        "/api/v1/auth/login",
        data=gzip.compress(b'{"email": "nobody@example.test", "password": "wrong-password"}'),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert small.status == 401


async def test_a_chunked_body_is_read_in_full(api: Api) -> None:
    async def pieces() -> AsyncIterator[bytes]:
        for piece in (b'{"email": "nobody@', b"example.test", b'", "password": "wrong-pass"}'):
            yield piece
            await asyncio.sleep(0.01)  # the handler runs before the body has all arrived

    answer = await api.post(
        "/api/v1/auth/login", data=pieces(), headers={"Content-Type": "application/json"}
    )
    assert answer.status == 401  # parsed and checked, not refused as malformed
    oversized = await api.post(
        "/api/v1/auth/login",
        data=_chunks(b'{"email": "' + b"x" * 100_000 + b'"}'),
        headers={"Content-Type": "application/json"},
    )
    assert oversized.status == 413


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 8192):
        yield data[start : start + 8192]


async def test_deeply_nested_json_is_422(api: Api) -> None:
    answer = await api.post(
        "/api/v1/auth/login",
        data=b"[" * 30_000 + b"]" * 30_000,
        headers={"Content-Type": "application/json"},
    )
    assert answer.status == 422


async def test_security_headers_and_request_id(api: Api, make_user: MakeUser) -> None:
    person = await make_user()
    answer = await api.get("/api/v1/wallets", token=person.token)
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Referrer-Policy"] == "no-referrer"
    assert answer.headers["Cache-Control"] == "no-store"
    generated = answer.headers["X-Request-Id"]
    assert generated == uuid.UUID(hex=generated).hex  # a random (version 4) UUID's hex
    assert uuid.UUID(hex=generated).version == 4
    traced = await api.get("/healthz", headers={"X-Request-Id": "trace-0123456789"})
    assert traced.headers["X-Request-Id"] == "trace-0123456789"
    hostile = await api.get("/healthz", headers={"X-Request-Id": "not <a> sane id"})
    assert hostile.headers["X-Request-Id"] != "not <a> sane id"


async def test_every_kind_of_answer_carries_the_headers(
    api: Api, make_user: MakeUser, wallet_app: TestClient[web.Request, web.Application]
) -> None:
    person = await make_user()
    traced = {"X-Request-Id": "trace-headers-01"}
    answers = {
        "error": await api.get("/api/v1/wallets", headers=traced),
        "unmatched": await api.get("/api/v1/nowhere", headers=traced),
        "page": await api.get("/", headers=traced),
    }
    # The websocket answer is prepared by the view itself, not on the way out.
    async with wallet_app.ws_connect(
        "/api/v1/live", headers={**traced, "Authorization": f"Bearer {person.token}"}
    ) as websocket:
        upgrade = websocket._response.headers  # the handshake's 101 answer
    for kind, headers in [*((k, a.headers) for k, a in answers.items()), ("live", upgrade)]:
        assert headers["X-Content-Type-Options"] == "nosniff", kind
        assert headers["X-Frame-Options"] == "DENY", kind
        assert headers["Referrer-Policy"] == "no-referrer", kind
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"], kind
        assert headers["X-Request-Id"] == "trace-headers-01", kind
        # The page keeps its own caching rule; API answers are never stored.
        assert (headers["Cache-Control"] == "no-store") is (kind != "page"), kind


async def test_index_page_links_the_api_document(api: Api) -> None:
    answer = await api.get("/")
    assert answer.status == 200
    assert answer.headers["Content-Type"].startswith("text/html")
    assert "/api/v1/openapi.json" in answer.text
