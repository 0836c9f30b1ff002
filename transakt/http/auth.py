"""Access tokens (JWT) and the middleware that requires one on the private API."""

from __future__ import annotations

import functools
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from aiohttp import web

from transakt.config import Settings
from transakt.errors import Unauthorized
from transakt.http.constants import (
    API_PREFIX,
    PUBLIC_API_PATHS,
    QUERY_TOKEN_PATHS,
    TOKEN_AUDIENCE,
    TOKEN_ISSUER,
)
from transakt.http.keys import SETTINGS_KEY, USER_ID_KEY

__all__ = [
    "AccessToken",
    "authenticate",
    "bearer_token",
    "current_user_id",
    "decode_access_token",
    "issue_access_token",
    "request_token",
]


@dataclass(frozen=True, slots=True)
class AccessToken:
    """A freshly issued token and how many seconds it lives."""

    token: str
    expires_in: int

    def to_json(self) -> dict[str, Any]:
        """The contract's login answer."""
        return {"access_token": self.token, "token_type": "bearer", "expires_in": self.expires_in}


def issue_access_token(settings: Settings, user_id: str, *, now: int | None = None) -> AccessToken:
    """Sign a token naming ``user_id`` that expires after ``settings.jwt_ttl_seconds``."""
    issued_at = int(time.time()) if now is None else now
    claims = {
        "sub": user_id,
        "iat": issued_at,
        "exp": issued_at + settings.jwt_ttl_seconds,
        "iss": TOKEN_ISSUER,
        "aud": TOKEN_AUDIENCE,
        "jti": uuid.uuid4().hex,
    }
    token = jwt.encode(
        claims, settings.jwt_secret.get_secret_value(), algorithm=settings.jwt_algorithm
    )
    return AccessToken(token=token, expires_in=settings.jwt_ttl_seconds)


@functools.lru_cache(maxsize=65_536)
def _verified_claims(secret: str, algorithm: str, token: str) -> tuple[str, int]:
    """Verify a token once and remember (subject, exp) for its exact string.

    Verifying an HMAC signature and parsing the claims cost ~15% of a transfer's CPU; a client
    sends the same token with every request. Only tokens that verified are cached (a raising
    call is never cached), keyed by the full string, so a forged variant never hits; expiry is
    checked again on every use by the caller.
    """
    # The algorithm is pinned, never taken from the token header: that refuses
    # "alg": "none" and algorithm-confusion forgeries.
    claims = jwt.decode(
        token,
        secret,
        algorithms=[algorithm],
        audience=TOKEN_AUDIENCE,
        issuer=TOKEN_ISSUER,
        options={"require": ["exp", "iat", "sub", "aud", "iss"]},
    )
    subject = claims.get("sub")
    expires = claims.get("exp")
    if not isinstance(subject, str) or not subject or not isinstance(expires, int):
        raise jwt.InvalidTokenError("the token has no usable subject or expiry")
    return subject, expires


def decode_access_token(settings: Settings, token: str) -> str:
    """The user id of a valid token; Unauthorized for a forged, expired or foreign one."""
    try:
        subject, expires = _verified_claims(
            settings.jwt_secret.get_secret_value(), settings.jwt_algorithm, token
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("the access token has expired; log in again") from None
    except jwt.InvalidTokenError:
        raise Unauthorized("the access token is invalid") from None
    if expires <= time.time():
        raise Unauthorized("the access token has expired; log in again")
    return subject


def bearer_token(request: web.Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header, or None when there is none."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("the Authorization header must be 'Bearer <token>'")
    return token.strip()


def request_token(request: web.Request, *, allow_query: bool = False) -> str:
    """The request's token: the bearer header, or ``?token=`` where allowed (websockets)."""
    token = bearer_token(request)
    if token is None and allow_query:
        token = request.query.get("token") or None
    if token is None:
        raise Unauthorized("an access token is required (Authorization: Bearer <token>)")
    return token


def current_user_id(request: web.Request) -> str:
    """The authenticated user's id, set by :func:`authenticate`."""
    try:
        return request[USER_ID_KEY]
    except KeyError:
        # A private route that the middleware did not guard: refuse rather than guess.
        raise Unauthorized("an access token is required (Authorization: Bearer <token>)") from None


def _needs_token(request: web.Request) -> bool:
    path = request.path
    if not path.startswith(API_PREFIX + "/") or path in PUBLIC_API_PATHS:
        return False
    # Unknown routes and wrong methods answer 404/405 whoever asks.
    return request.match_info.http_exception is None


def authenticate(request: web.Request) -> None:
    """Require a valid access token on every private /api/v1 route (deny by default)."""
    if _needs_token(request):
        token = request_token(request, allow_query=request.path in QUERY_TOKEN_PATHS)
        request[USER_ID_KEY] = decode_access_token(request.app[SETTINGS_KEY], token)
