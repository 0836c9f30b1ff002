"""Service tokens between the wallet and the bank: short-lived HS256 JWTs, algorithm pinned."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import jwt
from aiohttp import web
from aiohttp.typedefs import Middleware

from transakt.bank.constants import (
    ADMIN_PREFIX,
    API_PREFIX,
    SERVICE_TOKEN_ALGORITHM,
    SERVICE_TOKEN_AUDIENCE,
    SERVICE_TOKEN_ISSUER,
)
from transakt.errors import Unauthorized

__all__ = ["issue_service_token", "service_auth_middleware", "verify_service_token"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def issue_service_token(secret: str, ttl: int = 300) -> str:
    """Mint a token the bank accepts for ``ttl`` seconds."""
    now = int(time.time())
    claims = {
        "iss": SERVICE_TOKEN_ISSUER,
        "aud": SERVICE_TOKEN_AUDIENCE,
        "sub": SERVICE_TOKEN_ISSUER,
        "iat": now,
        "exp": now + ttl,
    }
    return jwt.encode(claims, secret, algorithm=SERVICE_TOKEN_ALGORITHM)


def verify_service_token(token: str, secret: str) -> dict[str, Any]:
    """Return the claims of a valid service token; raise Unauthorized otherwise."""
    try:
        # algorithms is pinned, never read from the token: that refuses "alg": "none" and
        # any other algorithm an attacker picks.
        return jwt.decode(
            token,
            secret,
            algorithms=[SERVICE_TOKEN_ALGORITHM],
            audience=SERVICE_TOKEN_AUDIENCE,
            issuer=SERVICE_TOKEN_ISSUER,
            options={"require": ["exp", "aud", "iss"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("service token expired") from None
    except jwt.InvalidTokenError:
        raise Unauthorized("invalid service token") from None


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
