"""The Idempotency-Key header: read it, fingerprint the request, answer every request once.

:func:`answer_once` is what every mutating view of a signed-in user goes through. Without a
key it just runs the operation. With one, the answer that reached a decision, success or
refusal, is kept (:mod:`transakt.services.idempotency` owns the record) and every later
request with that key gets it again, with ``Idempotent-Replayed: true``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable
from typing import Any, Final, Protocol

from aiohttp import web

from transakt.errors import DomainError, ValidationFailed
from transakt.http.auth import current_user_id
from transakt.http.constants import (
    IDEMPOTENCY_HEADER,
    MAX_IDEMPOTENCY_KEY_LENGTH,
    REPLAYED_HEADER,
)
from transakt.http.errors import domain_error_parts
from transakt.http.keys import NODE_KEY
from transakt.services.idempotency import IdempotencyKey, Replay
from transakt.web.json import canonical_json, json_response

__all__ = ["Answerable", "answer_once", "idempotency_key", "replay_response", "request_hash"]

# Printable ASCII only: keys are stored and compared byte for byte.
_KEY: Final = re.compile(r"[\x20-\x7e]+")
_REPLAYED: Final = {REPLAYED_HEADER: "true"}


class Answerable(Protocol):
    """A result a view answers with: anything with the contract's JSON shape."""

    def to_json(self) -> dict[str, Any]:
        """The JSON body."""
        ...


Operation = Callable[[IdempotencyKey | None], Awaitable[Answerable | Replay]]


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


def _status_of(result: Answerable, status: int) -> int:
    """A result may name its own status (a payment held for review is 202, not 201)."""
    own = getattr(result, "http_status", None)
    return own if isinstance(own, int) else status


def replay_response(replay: Replay) -> web.Response:
    """The first answer to this key, exactly as it was, marked as a replay."""
    return json_response(replay.body, status=replay.status, headers=_REPLAYED)


async def answer_once(
    request: web.Request,
    body: dict[str, Any],
    operation: Operation,
    *,
    status: int,
    stores_success: bool = False,
    look_up_first: bool = False,
) -> web.Response:
    """Answer with ``operation``'s result under ``status``, once per Idempotency-Key.

    ``operation`` gets the key (None without one) and returns the result, or a Replay when it
    found the key answered already (a ledger change finds that itself). ``stores_success``
    says the operation keeps its own success under the key, in its own transaction (ledger
    changes, wallet creation); for the others the success is kept here, after the fact.
    ``look_up_first`` reads the stored answer before running (for operations that cannot find
    a replay themselves). A refusal that is a decision (see ``DomainError.decided``) is kept
    either way; one that is not is raised as it came.
    """
    key = idempotency_key(request, body)
    if key is None:
        result = await operation(None)
        if isinstance(result, Replay):
            return replay_response(result)
        return json_response(result.to_json(), status=_status_of(result, status))
    user_id = current_user_id(request)
    idempotency = request.app[NODE_KEY].idempotency

    async def run() -> tuple[Replay, bool]:
        if look_up_first:
            stored = await idempotency.replay(user_id, key)
            if stored is not None:
                return stored, True
        try:
            result = await operation(key)
        except DomainError as error:
            if not error.decided:
                raise
            refused, refusal, _headers = domain_error_parts(request, error)
            first = await idempotency.record(user_id, key, refused, refusal)
            return (first, True) if first is not None else (Replay(refused, refusal), False)
        if isinstance(result, Replay):
            return result, True
        answer = Replay(_status_of(result, status), result.to_json())
        if not stores_success:
            first = await idempotency.record(user_id, key, answer.status, answer.body)
            if first is not None:
                return first, True
        return answer, False

    answer, replayed = await idempotency.once(user_id, key, run)
    return json_response(answer.body, status=answer.status, headers=_REPLAYED if replayed else None)
