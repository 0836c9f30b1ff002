"""Fraud review for operators: the queue of held payments, and the final decisions."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import BeforeValidator, WithJsonSchema

from transakt.errors import ValidationFailed
from transakt.http.auth import current_user_id
from transakt.http.idempotency import answer_once
from transakt.http.schemas import (
    _Body,
    _clean_text,
    parse_cursor,
    parse_limit,
    parse_path_id,
    validate_body,
)
from transakt.http.views._shared import node_of
from transakt.services.idempotency import IdempotencyKey
from transakt.services.reviews import Decision
from transakt.web.json import json_response, read_json_object

__all__ = ["DecisionBody", "approve", "list_reviews", "reject"]

MAX_NOTE_LENGTH = 1000


def _note(value: Any) -> str:
    text = _clean_text(value, max_length=MAX_NOTE_LENGTH, multiline=True).strip()
    if not text:
        from pydantic_core import PydanticCustomError

        raise PydanticCustomError("invalid", "must not be empty: say why")
    return text


Note = Annotated[
    str,
    BeforeValidator(_note),
    WithJsonSchema({"type": "string", "minLength": 1, "maxLength": MAX_NOTE_LENGTH}),
]


class DecisionBody(_Body):
    """POST /api/v1/reviews/{transfer_id}/approve and /reject: why (required)."""

    note: Note


async def list_reviews(request: web.Request) -> web.Response:
    """GET /api/v1/reviews?status=open|decided: held payments, oldest first (operators)."""
    user_id = current_user_id(request)
    raw = request.query.get("status", "open")
    if raw not in ("open", "decided"):
        message = "status must be open or decided"
        raise ValidationFailed(message, fields={"status": message})
    status: Literal["open", "decided"] = "open" if raw == "open" else "decided"
    limit = parse_limit(request.query.get("limit"))
    cursor = parse_cursor(request.query.get("cursor"))
    page = await node_of(request).reviews.queue(user_id, status, limit, cursor)
    return json_response(page.to_json())


async def _decide(request: web.Request, decision: Literal["approved", "rejected"]) -> web.Response:
    user_id = current_user_id(request)
    transfer_id = parse_path_id(request.match_info["id"], "held payment")
    raw = await read_json_object(request)
    body = validate_body(DecisionBody, raw)
    reviews = node_of(request).reviews

    async def decide(_key: IdempotencyKey | None) -> Decision:
        return await reviews.decide(user_id, transfer_id, decision, body.note)

    return await answer_once(request, raw, decide, status=200)


async def approve(request: web.Request) -> web.Response:
    """POST /api/v1/reviews/{transfer_id}/approve: post the held payment (final)."""
    return await _decide(request, "approved")


async def reject(request: web.Request) -> web.Response:
    """POST /api/v1/reviews/{transfer_id}/reject: void it, releasing the hold (final)."""
    return await _decide(request, "rejected")
