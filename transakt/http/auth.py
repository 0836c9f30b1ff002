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
from transakt.http.keys import CLAIMS_KEY, NODE_KEY, SETTINGS_KEY

__all__ = [
    "AccessToken",
    "Claims",
    "authenticate",
    "bearer_token",
    "current_claims",
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


@dataclass(frozen=True, slots=True)
class Claims:
    """What a verified token says: whose it is, its id, its expiry and its version."""

    user_id: str
    jti: str
    expires_at: int
    version: int


def issue_access_token(
    settings: Settings, user_id: str, *, version: int = 0, now: int | None = None
) -> AccessToken:
    """Sign a token naming ``user_id`` that expires after ``settings.jwt.ttl_seconds``.

    ``version`` is the user's token version: a password change raises it, which ends every
    token carrying a lower one.
    """
    issued_at = int(time.time()) if now is None else now
    claims = {
        "sub": user_id,
        "iat": issued_at,
        "exp": issued_at + settings.jwt.ttl_seconds,
        "iss": TOKEN_ISSUER,
        "aud": TOKEN_AUDIENCE,
        "jti": uuid.uuid4().hex,
        "ver": version,
    }
    token = jwt.encode(
        claims, settings.jwt.secret.get_secret_value(), algorithm=settings.jwt.algorithm
    )
    return AccessToken(token=token, expires_in=settings.jwt.ttl_seconds)


@functools.lru_cache(maxsize=65_536)
def _verified_claims(secret: str, algorithm: str, token: str) -> Claims:
    """Verify a token once and remember its claims for its exact string.

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
        options={"require": ["exp", "iat", "sub", "aud", "iss", "jti"]},
    )
    subject = claims.get("sub")
    expires = claims.get("exp")
    jti = claims.get("jti")
    version = claims.get("ver", 0)  # tokens from before versions were all version 0
    if (
        not isinstance(subject, str)
        or not subject
        or not isinstance(expires, int)
        or not isinstance(jti, str)
        or type(version) is not int
    ):
        raise jwt.InvalidTokenError("the token has no usable subject, id, expiry or version")
    return Claims(user_id=subject, jti=jti, expires_at=expires, version=version)


def decode_access_token(settings: Settings, token: str) -> Claims:
    """The claims of a valid token; Unauthorized for a forged, expired or foreign one."""
    try:
        claims = _verified_claims(
            settings.jwt.secret.get_secret_value(), settings.jwt.algorithm, token
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("the access token has expired; log in again") from None
    except jwt.InvalidTokenError:
        raise Unauthorized("the access token is invalid") from None
    if claims.expires_at <= time.time():
        raise Unauthorized("the access token has expired; log in again")
    return claims


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
    return current_claims(request).user_id


def current_claims(request: web.Request) -> Claims:
    """The authenticated request's token claims, set by :func:`authenticate`."""
    try:
        return request[CLAIMS_KEY]
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
        claims = decode_access_token(request.app[SETTINGS_KEY], token)
        # Logged out, or issued before a password change: a dictionary look-up, no I/O.
        request.app[NODE_KEY].sessions.check(claims.user_id, claims.jti, claims.version)
        request[CLAIMS_KEY] = claims
