"""The API docs page at /api/docs: the OpenAPI document for people, under the strict CSP."""

from __future__ import annotations

import html
import re

from httpkit import Api

from transakt.http.apidocs.render import render_page


async def test_the_page_lists_every_operation_of_the_document(api: Api) -> None:
    document = (await api.get("/api/v1/openapi.json")).body
    page = await api.get("/api/docs")
    assert page.status == 200
    assert page.headers["Content-Type"].startswith("text/html")
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy
    assert "unsafe-inline" not in policy
    # No script, no inline style, nothing from elsewhere: it works under that policy.
    assert "<script" not in page.text and "style=" not in page.text and "<style" not in page.text
    assert not re.search(r"""(?:src|href)=["']?(?:https?:)?//""", page.text)
    operation_ids = [
        operation["operationId"]
        for operations in document["paths"].values()
        for operation in operations.values()
    ]
    assert len(operation_ids) > 40
    for operation_id in operation_ids:
        assert f"operation <code>{html.escape(operation_id)}</code>" in page.text, operation_id
    for tag in {op["tags"][0] for ops in document["paths"].values() for op in ops.values()}:
        assert f">{html.escape(tag)}</h2>" in page.text, tag
    # Parameters, bodies and responses are there too.
    assert "Idempotency-Key" in page.text
    assert 'href="#schema-TransferRequest"' in page.text
    assert "insufficient_funds" in page.text


async def test_the_style_sheet_is_served_and_cached_by_etag(api: Api) -> None:
    sheet = await api.get("/api/docs/apidocs.css")
    assert sheet.status == 200
    assert sheet.headers["Content-Type"].startswith("text/css")
    again = await api.get("/api/docs/apidocs.css", headers={"If-None-Match": sheet.headers["ETag"]})
    assert again.status == 304


def test_every_text_of_the_document_is_escaped() -> None:
    hostile = "<script>alert(1)</script>"
    page = render_page(
        {
            "info": {"title": hostile, "version": "1"},
            "paths": {
                "/x": {
                    "get": {
                        "operationId": f"op{hostile}",
                        "summary": hostile,
                        "tags": [hostile],
                        "parameters": [{"name": hostile, "in": "query", "schema": {}}],
                        "responses": {"200": {"description": hostile}},
                    }
                }
            },
            "components": {"schemas": {"S": {"description": hostile, "enum": [hostile]}}},
        }
    )
    assert "<script" not in page
    assert page.count(html.escape(hostile)) >= 6
