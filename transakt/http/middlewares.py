"""Request ids, security headers and an access log that never shows a credential."""

from __future__ import annotations

import logging
import re
from time import perf_counter
from typing import Any, Final

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.typedefs import Middleware

from transakt.http.auth import authenticate
from transakt.http.constants import API_PREFIX, REQUEST_ID_HEADER
from transakt.http.errors import error_answer
from transakt.http.keys import REQUEST_ID_KEY
from transakt.http.metrics import HttpMetrics, method_label, route_label
from transakt.http.typing import Handler
from transakt.ids import uuid4_hex
from transakt.logs import escape_controls

__all__ = [
    "AccessLogger",
    "apply_security_headers",
    "front_door",
    "request_id_middleware",
    "set_security_headers",
]

# A caller's own request id is kept (to trace a request across services) only when it is tame.
_INCOMING_REQUEST_ID: Final = re.compile(r"[A-Za-z0-9._-]{8,64}")
_SECRET_QUERY_PARAMETERS: Final = frozenset({"token", "access_token"})

# The dashboard's policy, sent with every answer (JSON included: it costs nothing there): only
# the app's own files run, no inline script or style, no framing, forms post only to the app.
_CONTENT_SECURITY_POLICY: Final = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self' ws: wss:",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
    )
)
_SECURITY_HEADERS: Final = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": _CONTENT_SECURITY_POLICY,
}
_SECURITY_HEADER_ITEMS: Final = tuple(_SECURITY_HEADERS.items())
# Paths whose answers are personal or live: no cache may keep them.
_NO_STORE_PREFIXES: Final = (API_PREFIX + "/", "/healthz", "/readyz", "/metrics")


def _request_id(request: web.Request) -> str:
    incoming = request.headers.get(REQUEST_ID_HEADER)
    if incoming is not None and _INCOMING_REQUEST_ID.fullmatch(incoming):
        return incoming
    return uuid4_hex()


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give every request an id (the caller's X-Request-Id when sane) for logs and errors."""
    request[REQUEST_ID_KEY] = _request_id(request)
    return await handler(request)


def front_door(metrics: HttpMetrics) -> Middleware:
    """Request id, metrics, error shape, authentication and response headers as one middleware.

    The same as stacking a request-id, a metrics, an error and an authentication middleware
    (in that order), minus the partial call and coroutine each extra layer costs per request.
    Ids come first (errors quote them), metrics see the final status, and errors wrap
    authentication so a refused token is a 401 in the error shape.

    Every answer it returns (error answers and raised redirects included) gets the security
    headers, the no-store rule and the request id here rather than from an on_response_prepare
    hook, which costs a signal dispatch and a coroutine per response. A handler that prepares
    its own response (a websocket) calls :func:`apply_security_headers` before ``prepare``.
    """
    record = metrics.record

    @web.middleware
    async def front_door_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        request[REQUEST_ID_KEY] = request_id = _request_id(request)
        route = route_label(request)
        method = method_label(request.method)
        started = perf_counter()
        status = 500
        metrics.handling += 1
        try:
            try:
                authenticate(request)
                response = await handler(request)
            except Exception as error:
                response = error_answer(request, error)
            status = response.status
        except web.HTTPException as error:  # a redirect: aiohttp sends the exception itself
            status = error.status
            _stamp(error, request_id, request.path.startswith(_NO_STORE_PREFIXES))
            raise
        finally:
            metrics.handling -= 1
            record(method, route, status, perf_counter() - started)
        if not response.prepared:
            _stamp(response, request_id, request.path.startswith(_NO_STORE_PREFIXES))
        return response

    return front_door_middleware


def apply_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Stamp a response that is not yet prepared: security headers, no-store, the request id."""
    _stamp(response, request.get(REQUEST_ID_KEY), request.path.startswith(_NO_STORE_PREFIXES))


async def set_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare hook doing what :func:`front_door` does, for apps without it."""
    apply_security_headers(request, response)


# Instead of aiohttp's "Python/3.x aiohttp/3.x": versions only help whoever looks for a known bug.
_SERVER: Final = "transakt"


def _stamp(response: web.StreamResponse, request_id: str | None, no_store: bool) -> None:
    headers = response.headers
    headers["Server"] = _SERVER
    for name, value in _SECURITY_HEADER_ITEMS:
        headers.setdefault(name, value)
    if no_store:
        headers["Cache-Control"] = "no-store"
    if request_id is not None:
        headers[REQUEST_ID_HEADER] = request_id


def _redacted_target(request: web.BaseRequest) -> str:
    if not request.query_string:
        return request.path
    parts = [
        f"{name}=[redacted]" if name in _SECRET_QUERY_PARAMETERS else f"{name}={value}"
        for name, value in request.query.items()
    ]
    return f"{request.path}?{'&'.join(parts)}"


class AccessLogger(AbstractAccessLogger):
    """One line per request: no headers at all (so no Authorization), tokens in queries hidden.

    What the client chose (method, path, query) is written with its control characters escaped:
    aiohttp decodes ``%0d%0a`` in a path to CR LF, which would otherwise start a forged line.
    """

    def log(self, request: Any, response: Any, time: float) -> None:
        """Write the access line for one answered request."""
        if not self.logger.isEnabledFor(logging.INFO):
            return
        self.logger.info(
            '%s "%s %s" %s %s %.1fms id=%s',
            request.remote,
            escape_controls(request.method),
            escape_controls(_redacted_target(request)),
            response.status,
            response.body_length,
            time * 1000,
            request.get(REQUEST_ID_KEY, "-"),
        )
