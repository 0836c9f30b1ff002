"""The sandbox bank's side of service tokens: every /api/v1 and /admin call must carry one."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from transakt.bankapi.constants import ADMIN_PREFIX, API_PREFIX
from transakt.bankapi.tokens import verify_service_token
from transakt.errors import Unauthorized

__all__ = ["service_auth_middleware"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def bearer_token(request: web.Request) -> str:
    """The token of an ``Authorization: Bearer`` header; raise Unauthorized when absent."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("a service token is required (Authorization: Bearer <token>)")
    return token.strip()


def service_auth_middleware(secret: str) -> Middleware:
    """Require a valid service token on every /api/v1 and /admin request."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if path.startswith((API_PREFIX + "/", ADMIN_PREFIX + "/")):
            verify_service_token(bearer_token(request), secret)
        return await handler(request)

    return middleware
