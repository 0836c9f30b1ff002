"""The error middleware on its own: every kind of failure becomes the contract's error shape."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import ClassVar, NoReturn

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from transakt.errors import (
    BankUnavailable,
    DomainError,
    NotFound,
    RateLimited,
    ValidationFailed,
)
from transakt.http.metrics import HttpMetrics
from transakt.http.middlewares import front_door
from transakt.http.typing import Handler
from transakt.runtime import ActorDeadError, AskTimeout, MailboxFull
from transakt.web.headers import REQUEST_ID_KEY, AccessLogger, new_request_id


class Teapot(DomainError):
    """A domain error the HTTP layer has no status for."""

    code: ClassVar[str] = "teapot"


def _raiser(error: BaseException) -> Handler:
    async def handler(request: web.Request) -> NoReturn:
        raise error

    return handler


ERRORS: dict[str, BaseException] = {
    "/boom": RuntimeError("password=hunter2 at postgresql://secret@db"),
    "/mailbox": MailboxFull("wallet-1", 10),
    "/timeout": AskTimeout("wallet-1", "Debit", 1.0),
    "/dead": ActorDeadError("wallet-1"),
    "/database": asyncpg.InternalClientError("connection lost while executing a query"),
    "/bank": BankUnavailable("the bank is down", retry_after=2.5),
    "/limited": RateLimited("slow down", retry_after=0.2),
    "/field": ValidationFailed("amount must be positive", field="amount"),
    "/fields": ValidationFailed("give one", fields=["to_wallet", "to_email"]),
    "/teapot": Teapot("short and stout"),
    "/details": NotFound("no such thing", at=datetime(2024, 1, 1, tzinfo=UTC), code="spoof"),
}


@pytest.fixture(scope="module")
async def client() -> AsyncIterator[TestClient[web.Request, web.Application]]:
    """A bare app with the node's front door middleware and handlers that fail on purpose."""
    app = web.Application(middlewares=[front_door(HttpMetrics())])
    for path, error in ERRORS.items():
        app.router.add_get(path, _raiser(error))
    async with TestClient(TestServer(app, host="127.0.0.1")) as test_client:
        yield test_client


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/mailbox", 503, "overloaded"),
        ("/timeout", 503, "overloaded"),
        ("/dead", 503, "overloaded"),
        ("/database", 503, "overloaded"),
        ("/bank", 503, "bank_unavailable"),
        ("/limited", 429, "rate_limited"),
        ("/field", 422, "validation_error"),
        ("/fields", 422, "validation_error"),
        ("/teapot", 400, "teapot"),
        ("/details", 404, "not_found"),
    ],
)
async def test_errors_map_to_status_and_code(
    client: TestClient[web.Request, web.Application], path: str, status: int, code: str
) -> None:
    async with client.get(path) as response:
        body = await response.json()
        assert response.status == status
        assert body["error"]["code"] == code
        assert isinstance(body["error"]["message"], str)
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        if status in (429, 503):
            assert int(response.headers["Retry-After"]) >= 1
            assert body["error"]["retry_after"] == int(response.headers["Retry-After"])


async def test_retry_after_rounds_up_to_whole_seconds(
    client: TestClient[web.Request, web.Application],
) -> None:
    async with client.get("/bank") as response:
        assert response.headers["Retry-After"] == "3"
    async with client.get("/limited") as response:
        assert response.headers["Retry-After"] == "1"


async def test_ask_timeout_says_the_outcome_is_unknown(
    client: TestClient[web.Request, web.Application],
) -> None:
    async with client.get("/timeout") as response:
        message = (await response.json())["error"]["message"]
    assert "Idempotency-Key" in message


async def test_validation_details_always_name_fields(
    client: TestClient[web.Request, web.Application],
) -> None:
    async with client.get("/field") as response:
        assert (await response.json())["error"]["fields"] == {"amount": "amount must be positive"}
    async with client.get("/fields") as response:
        assert set((await response.json())["error"]["fields"]) == {"to_wallet", "to_email"}


async def test_details_cannot_replace_the_code_and_are_made_json(
    client: TestClient[web.Request, web.Application],
) -> None:
    async with client.get("/details") as response:
        error = (await response.json())["error"]
    assert error["code"] == "not_found"
    assert error["at"].startswith("2024-01-01")


async def test_unexpected_error_is_a_generic_500_with_a_request_id(
    client: TestClient[web.Request, web.Application], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="transakt.http"):
        async with client.get("/boom") as response:
            text = await response.text()
            body = await response.json()
            request_id = response.headers["X-Request-Id"]
    assert response.status == 500
    assert body["error"]["code"] == "internal_error"
    assert body["error"]["request_id"] == request_id
    assert "hunter2" not in text and "Traceback" not in text and "RuntimeError" not in text
    # The traceback is in the server log, tied to the same request id.
    assert any(request_id in record.getMessage() and record.exc_info for record in caplog.records)


async def test_routing_errors_use_the_error_shape(
    client: TestClient[web.Request, web.Application],
) -> None:
    async with client.get("/nowhere") as response:
        assert response.status == 404
        assert (await response.json())["error"]["code"] == "not_found"
    async with client.post("/boom") as response:
        assert response.status == 405
        assert (await response.json())["error"]["code"] == "method_not_allowed"


async def test_access_log_never_shows_credentials(caplog: pytest.LogCaptureFixture) -> None:
    async def ok(request: web.Request) -> web.Response:
        return web.json_response({})

    @web.middleware
    async def with_request_id(request: web.Request, handler: Handler) -> web.StreamResponse:
        request[REQUEST_ID_KEY] = new_request_id(request)
        return await handler(request)

    app = web.Application(middlewares=[with_request_id])
    app.router.add_get("/api/v1/live", ok)
    access_log = logging.getLogger("transakt.http.access.test")
    runner = web.AppRunner(app, access_log_class=AccessLogger, access_log=access_log)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        with caplog.at_level(logging.INFO, logger=access_log.name):
            async with (
                aiohttp.ClientSession() as session,
                session.get(
                    f"http://{host}:{port}/api/v1/live",
                    params={"token": "query-secret-token", "since": "5"},
                    headers={"Authorization": "Bearer header-secret-token"},
                ) as response,
            ):
                assert response.status == 200
            await runner.cleanup()  # the line is written by the time the server has stopped
    finally:
        await runner.cleanup()
    lines = [record.getMessage() for record in caplog.records if record.name == access_log.name]
    assert len(lines) == 1
    assert "secret" not in lines[0]
    assert "token=[redacted]" in lines[0] and "since=5" in lines[0]
    assert "GET /api/v1/live" in lines[0] and " 200 " in lines[0]
