"""Refunds of payments."""

from __future__ import annotations

from aiohttp import web

from transakt.http.auth import current_user_id
from transakt.http.idempotency import answer_once
from transakt.http.ledger_schemas import RefundBody
from transakt.http.schemas import parse_path_id, validate_body
from transakt.http.views._shared import node_of
from transakt.services.idempotency import IdempotencyKey
from transakt.services.refunds import Refund
from transakt.web.json import json_response, read_json_object

__all__ = ["create_refund", "list_refunds"]


async def create_refund(request: web.Request) -> web.Response:
    """POST /api/v1/transfers/{id}/refund: the payee pays the payment back (201 once durable)."""
    user_id = current_user_id(request)
    transfer_id = parse_path_id(request.match_info["id"], "transfer")
    raw = await read_json_object(request, optional=True)
    body = validate_body(RefundBody, raw)
    refunds = node_of(request).refunds

    async def pay_back(key: IdempotencyKey | None) -> Refund:
        return await refunds.refund(user_id, transfer_id, body.amount, body.memo, key)

    # The answer names the payment refunded, which the ledger's stored answer would not:
    # it is kept here (look_up_first) rather than by the ledger.
    return await answer_once(
        request, {"transfer": transfer_id, **raw}, pay_back, status=201, look_up_first=True
    )


async def list_refunds(request: web.Request) -> web.Response:
    """GET /api/v1/transfers/{id}/refunds: the payment's refunds, oldest first (both parties)."""
    transfer_id = parse_path_id(request.match_info["id"], "transfer")
    items = await node_of(request).refunds.refunds(current_user_id(request), transfer_id)
    return json_response({"items": [item.to_json() for item in items]})
