"""Paths, limits and header names of the HTTP front door."""

from __future__ import annotations

from typing import Final

from transakt.web.headers import REQUEST_ID_HEADER
from transakt.web.json import MAX_BODY_BYTES

__all__ = [
    "API_PREFIX",
    "MAX_BODY_BYTES",
    "REQUEST_ID_HEADER",
]

API_PREFIX: Final = "/api/v1"


# Routes reachable without a token (everything else under API_PREFIX needs one).
PUBLIC_API_PATHS: Final = frozenset(
    {f"{API_PREFIX}/auth/signup", f"{API_PREFIX}/auth/login", f"{API_PREFIX}/openapi.json"}
)
# Browsers cannot set headers on a websocket handshake, so these routes also take ?token=.
QUERY_TOKEN_PATHS: Final = frozenset({f"{API_PREFIX}/live"})

TOKEN_ISSUER: Final = "transakt"
TOKEN_AUDIENCE: Final = "transakt-api"

IDEMPOTENCY_HEADER: Final = "Idempotency-Key"
REPLAYED_HEADER: Final = "Idempotent-Replayed"
MAX_IDEMPOTENCY_KEY_LENGTH: Final = 255

HISTORY_DEFAULT_LIMIT: Final = 50
HISTORY_MAX_LIMIT: Final = 200
MAX_CURSOR_LENGTH: Final = 512

MAX_EMAIL_LENGTH: Final = 254
MAX_PASSWORD_LENGTH: Final = 1024
MAX_NAME_LENGTH: Final = 200
MAX_MEMO_LENGTH: Final = 500
MAX_BANK_ACCOUNT_LENGTH: Final = 64
MAX_ID_LENGTH: Final = 128

# How long /readyz waits for all dependency checks before calling the node not ready.
READINESS_TIMEOUT_SECONDS: Final = 5.0
