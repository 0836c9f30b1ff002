"""Payments between wallets."""

from __future__ import annotations

from aiohttp import web

from transakt.http.auth import current_user_id
from transakt.http.idempotency import answer_once
from transakt.http.schemas import TransferBody, parse_email_query, parse_path_id, validate_body
from transakt.http.views._shared import node_of, service_of
from transakt.models import Transfer
from transakt.services.idempotency import IdempotencyKey, Replay
from transakt.services.reviews import ReviewedTransfer
from transakt.services.wallets import TransferRequest
from transakt.web.json import json_response, read_json_object

__all__ = ["create_transfer", "get_transfer", "recipient"]


async def create_transfer(request: web.Request) -> web.Response:
    """POST /api/v1/transfers: 201 once the transfer is posted and durable (202 when a review
    rule held it: pending, with ``review``)."""
    user_id = current_user_id(request)
    raw = await read_json_object(request)
    body = validate_body(TransferBody, raw)
    transfer_request = TransferRequest(
        from_wallet=body.from_wallet,
        to_wallet=body.to_wallet,
        to_email=body.to_email,
        amount=body.amount,
        currency=body.currency,
        memo=body.memo,
    )
    service = service_of(request)
    reviews = node_of(request).reviews

    async def pay(key: IdempotencyKey | None) -> Transfer | ReviewedTransfer | Replay:
        paid = await service.transfer(user_id, transfer_request, key)
        return paid if isinstance(paid, Replay) else await reviews.held(user_id, paid)

    # The ledger keeps the success with the transfer, and finds a replay by itself.
    return await answer_once(request, raw, pay, status=201, stores_success=True)


async def get_transfer(request: web.Request) -> web.Response:
    """GET /api/v1/transfers/{id}: visible to both parties."""
    transfer_id = parse_path_id(request.match_info["id"], "transfer")
    user_id = current_user_id(request)
    transfer = await service_of(request).get_transfer(user_id, transfer_id)
    [shown] = await node_of(request).reviews.shown(user_id, [transfer])
    return json_response(shown.to_json())


async def recipient(request: web.Request) -> web.Response:
    """GET /api/v1/recipients?email=: whom a payment to this address reaches (throttled)."""
    email = parse_email_query(request.query.get("email"))
    found = await service_of(request).recipient(current_user_id(request), email)
    return json_response(found.to_json())
