"""The error shape both services answer in: ``{"error": {code, message, ...details}}``.

Shared by the wallet's HTTP layer and the sandbox bank, with the RateLimit-* and Retry-After
helpers; each service keeps its own mapping from its errors to statuses.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

from aiohttp import web

from transakt.web.json import json_response

__all__ = [
    "error_body",
    "error_response",
    "rate_limit_headers",
    "retry_after_seconds",
    "seconds_or_zero",
]

_SCALARS: Final = (str, int, float, bool, type(None))


def _json_safe(value: Any) -> Any:
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, Mapping):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_json_safe(item) for item in value]
    return str(value)


def retry_after_seconds(seconds: float) -> int:
    # Retry-After takes whole seconds; never tell a client to retry in zero.
    return max(1, math.ceil(seconds))


def seconds_or_zero(seconds: float) -> int:
    """Whole seconds, rounded up, never negative (for RateLimit-Reset)."""
    return max(0, math.ceil(seconds))


def rate_limit_headers(limit: int, remaining: int, reset: int) -> dict[str, str]:
    """The RateLimit-* headers of the IETF draft: the quota, what is left, seconds to reset."""
    return {
        "RateLimit-Limit": str(limit),
        "RateLimit-Remaining": str(max(0, remaining)),
        "RateLimit-Reset": str(reset),
    }


def error_body(code: str, message: str, details: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The contract's error shape ``{"error": {code, message, ...details}}``."""
    error: dict[str, Any] = {
        key: _json_safe(value)
        for key, value in (details or {}).items()
        if key not in ("code", "message")
    }
    return {"error": {"code": code, "message": message, **error}}


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    details: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """A response in the contract's error shape ``{"error": {code, message, ...details}}``."""
    return json_response(error_body(code, message, details), status=status, headers=headers)
