"""Holds: payments reserved now, posted or voided later (or expired)."""

from __future__ import annotations

from aiohttp import web

from transakt.http.auth import current_user_id
from transakt.http.idempotency import answer_once
from transakt.http.ledger_schemas import HoldBody, PostHoldBody
from transakt.http.schemas import parse_path_id, validate_body
from transakt.http.views._shared import node_of
from transakt.http.views.transfers import payment_of
from transakt.models import Transfer
from transakt.services.holds import HoldRequest
from transakt.services.idempotency import IdempotencyKey, Replay
from transakt.web.json import json_response, read_json_object

__all__ = ["create_hold", "get_hold", "post_hold", "void_hold"]


async def create_hold(request: web.Request) -> web.Response:
    """POST /api/v1/holds: 201 once the hold (a pending transfer) is durable."""
    user_id = current_user_id(request)
    raw = await read_json_object(request)
    body = validate_body(HoldBody, raw)
    hold = HoldRequest(payment_of(body), expires_in=body.expires_in)
    holds = node_of(request).holds

    async def reserve(key: IdempotencyKey | None) -> Transfer | Replay:
        return await holds.create(user_id, hold, key)

    return await answer_once(request, raw, reserve, status=201, stores_success=True)


async def get_hold(request: web.Request) -> web.Response:
    """GET /api/v1/holds/{id}: visible to both parties."""
    hold_id = parse_path_id(request.match_info["id"], "hold")
    hold = await node_of(request).holds.get(current_user_id(request), hold_id)
    return json_response(hold.to_json())


async def post_hold(request: web.Request) -> web.Response:
    """POST /api/v1/holds/{id}/post: move the money (all, or ``amount`` of it)."""
    user_id = current_user_id(request)
    hold_id = parse_path_id(request.match_info["id"], "hold")
    raw = await read_json_object(request, optional=True)
    body = validate_body(PostHoldBody, raw)
    holds = node_of(request).holds

    async def post(_key: IdempotencyKey | None) -> Transfer:
        return await holds.post(user_id, hold_id, body.amount)

    return await answer_once(request, raw, post, status=200, look_up_first=True)


async def void_hold(request: web.Request) -> web.Response:
    """POST /api/v1/holds/{id}/void: release the money."""
    user_id = current_user_id(request)
    hold_id = parse_path_id(request.match_info["id"], "hold")
    raw = await read_json_object(request, optional=True)
    holds = node_of(request).holds

    async def void(_key: IdempotencyKey | None) -> Transfer:
        return await holds.void(user_id, hold_id)

    return await answer_once(request, raw, void, status=200, look_up_first=True)
