"""The wallet's front door middleware: request ids, metrics, errors, authentication, headers."""

from __future__ import annotations

from time import perf_counter
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Middleware

from transakt.http.auth import authenticate
from transakt.http.constants import API_PREFIX
from transakt.http.errors import error_answer
from transakt.http.metrics import HttpMetrics, method_label, route_label
from transakt.http.typing import Handler
from transakt.web.headers import REQUEST_ID_KEY, new_request_id, stamp

__all__ = [
    "apply_security_headers",
    "front_door",
]

# Paths whose answers are personal or live: no cache may keep them.
_NO_STORE_PREFIXES: Final = (API_PREFIX + "/", "/healthz", "/readyz", "/metrics")


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
        request[REQUEST_ID_KEY] = request_id = new_request_id(request)
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
            stamp(error, request_id, request.path.startswith(_NO_STORE_PREFIXES))
            raise
        finally:
            metrics.handling -= 1
            record(method, route, status, perf_counter() - started)
        if not response.prepared:
            stamp(response, request_id, request.path.startswith(_NO_STORE_PREFIXES))
        return response

    return front_door_middleware


def apply_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Stamp a response that is not yet prepared: security headers, no-store, the request id."""
    stamp(response, request.get(REQUEST_ID_KEY), request.path.startswith(_NO_STORE_PREFIXES))
