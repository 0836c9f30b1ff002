"""Operations endpoints: liveness, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web
from prometheus_client import generate_latest

from transakt.http.constants import READINESS_TIMEOUT_SECONDS
from transakt.http.openapi import OPENAPI_KEY
from transakt.http.views._shared import node_of
from transakt.observability import CONTENT_TYPE
from transakt.web.json import json_response

__all__ = ["healthz", "metrics", "openapi", "readyz"]

logger = logging.getLogger("transakt.http")


async def healthz(request: web.Request) -> web.Response:
    """GET /healthz: the process answers (liveness, no dependency checked)."""
    return json_response({"status": "ok"})


def _is_ready(checks: dict[str, dict[str, Any]]) -> bool:
    # An entry without "ok" is information (a breaker's state), not a failed dependency.
    return all(check.get("ok", True) is not False for check in checks.values())


async def readyz(request: web.Request) -> web.Response:
    """GET /readyz: 200 when every dependency answers, else 503; names each dependency."""
    try:
        async with asyncio.timeout(READINESS_TIMEOUT_SECONDS):
            checks = await node_of(request).readiness()
    except TimeoutError:
        checks = {"node": {"ok": False, "error": "readiness checks timed out"}}
    except Exception as error:
        # The log gets the details; the unauthenticated answer only names the failure's kind.
        logger.exception("readiness check failed")
        checks = {"node": {"ok": False, "error": type(error).__name__}}
    ready = _is_ready(checks)
    return json_response(
        {"status": "ready" if ready else "not_ready", "checks": checks},
        status=200 if ready else 503,
    )


async def metrics(request: web.Request) -> web.Response:
    """GET /metrics: the process's registry (the node's parts and the HTTP front door).

    Every collector reads attributes in memory: the scrape does no I/O, so it stays cheap
    while the node is under load.
    """
    body = generate_latest(node_of(request).registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


async def openapi(request: web.Request) -> web.Response:
    """GET /api/v1/openapi.json: the OpenAPI 3.1 document of every endpoint."""
    return web.Response(body=request.app[OPENAPI_KEY], content_type="application/json")
