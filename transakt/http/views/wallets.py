"""Wallets: list, open, read, and their transaction history."""

from __future__ import annotations

from aiohttp import web

from transakt.http.auth import current_user_id
from transakt.http.history_query import TRANSACTION_PARAMETERS, parse_filter, refuse_unknown
from transakt.http.idempotency import answer_once
from transakt.http.schemas import (
    CreateWalletBody,
    parse_cursor,
    parse_limit,
    parse_path_id,
    validate_body,
)
from transakt.http.views._shared import node_of, service_of
from transakt.http.views.history import history_of
from transakt.models import Wallet
from transakt.services.idempotency import IdempotencyKey
from transakt.web.json import json_response, read_json_object

__all__ = ["create_wallet", "get_wallet", "list_wallets", "wallet_history"]


async def list_wallets(request: web.Request) -> web.Response:
    """GET /api/v1/wallets."""
    wallets = await service_of(request).list_wallets(current_user_id(request))
    return json_response({"wallets": [wallet.to_json() for wallet in wallets]})


async def create_wallet(request: web.Request) -> web.Response:
    """POST /api/v1/wallets: one wallet per user and currency."""
    user_id = current_user_id(request)
    raw = await read_json_object(request)
    body = validate_body(CreateWalletBody, raw)
    service = service_of(request)

    async def create(key: IdempotencyKey | None) -> Wallet:
        return await service.create_wallet(user_id, body.currency, key)

    # The wallet and its answer under the key commit together.
    return await answer_once(
        request, raw, create, status=201, stores_success=True, look_up_first=True
    )


async def get_wallet(request: web.Request) -> web.Response:
    """GET /api/v1/wallets/{id}."""
    wallet_id = parse_path_id(request.match_info["id"], "wallet")
    wallet = await service_of(request).get_wallet(current_user_id(request), wallet_id)
    return json_response(wallet.to_json())


async def wallet_history(request: web.Request) -> web.Response:
    """GET /api/v1/wallets/{id}/transactions: newest first, one page per cursor, narrowed by
    the filters (kind, status, counterparty, from, to, min_amount, max_amount); a cursor is
    valid with the filters of the page that gave it only."""
    user_id = current_user_id(request)
    wallet_id = parse_path_id(request.match_info["id"], "wallet")
    refuse_unknown(request.query, TRANSACTION_PARAMETERS)
    limit = parse_limit(request.query.get("limit"))
    cursor = parse_cursor(request.query.get("cursor"))
    where = parse_filter(request.query)
    items, next_cursor = await history_of(request).transactions(
        user_id, wallet_id, where, limit, cursor
    )
    shown = await node_of(request).reviews.shown(user_id, items)  # held payments: their review
    return json_response(
        {"items": [transfer.to_json() for transfer in shown], "next_cursor": next_cursor}
    )
