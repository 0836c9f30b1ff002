"""Service tokens between the wallet and the bank: short-lived HS256 JWTs, algorithm pinned."""

from __future__ import annotations

import time
from typing import Any

import jwt

from transakt.bankapi.constants import (
    SERVICE_TOKEN_ALGORITHM,
    SERVICE_TOKEN_AUDIENCE,
    SERVICE_TOKEN_ISSUER,
)
from transakt.errors import Unauthorized

__all__ = ["issue_service_token", "verify_service_token"]


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
