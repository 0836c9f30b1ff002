"""The Idempotency-Key header: read it, fingerprint the request, answer replays."""

from __future__ import annotations

import hashlib
import re
from typing import Any, Final

from aiohttp import web

from transakt.actors.service import IdempotencyKey, Replay
from transakt.errors import ValidationFailed
from transakt.http._json import canonical_json, json_response
from transakt.http.constants import (
    IDEMPOTENCY_HEADER,
    MAX_IDEMPOTENCY_KEY_LENGTH,
    REPLAYED_HEADER,
)

__all__ = ["idempotency_key", "replay_response", "request_hash"]

# Printable ASCII only: keys are stored and compared byte for byte.
_KEY: Final = re.compile(r"[\x20-\x7e]+")


def request_hash(method: str, path: str, body: dict[str, Any]) -> str:
    """sha256 of ``METHOD path`` and the body's canonical JSON: equal requests, equal hash."""
    fingerprint = f"{method.upper()} {path}\n{canonical_json(body)}"
    return hashlib.sha256(fingerprint.encode()).hexdigest()


def idempotency_key(request: web.Request, body: dict[str, Any]) -> IdempotencyKey | None:
    """The request's Idempotency-Key with its fingerprint, None without one, 422 if malformed."""
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH or not _KEY.fullmatch(key):
        message = (
            f"{IDEMPOTENCY_HEADER} must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} "
            "printable ASCII characters"
        )
        raise ValidationFailed(message, fields={IDEMPOTENCY_HEADER: message})
    return IdempotencyKey(key=key, request_hash=request_hash(request.method, request.path, body))


def replay_response(replay: Replay) -> web.Response:
    """The first answer to this key, exactly as it was, marked as a replay."""
    return json_response(replay.body, status=replay.status, headers={REPLAYED_HEADER: "true"})
