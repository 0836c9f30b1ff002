"""Deposits and withdrawals: accepted (202) once pending and durable, settled by the bank."""

from __future__ import annotations

from aiohttp import web

from transakt.http.auth import current_user_id
from transakt.http.idempotency import answer_once
from transakt.http.schemas import BankTransferBody, validate_body
from transakt.http.views._shared import node_of
from transakt.models import Transfer
from transakt.services.banking import DEPOSIT, WITHDRAWAL, BankMove
from transakt.services.idempotency import IdempotencyKey, Replay
from transakt.web.json import read_json_object

__all__ = ["create_deposit", "create_withdrawal"]


async def create_deposit(request: web.Request) -> web.Response:
    """POST /api/v1/deposits: 202 with the pending transfer; the bank debits the account."""
    return await _bank_request(request, DEPOSIT)


async def create_withdrawal(request: web.Request) -> web.Response:
    """POST /api/v1/withdrawals: 202 with the pending transfer; the amount is held at once."""
    return await _bank_request(request, WITHDRAWAL)


async def _bank_request(request: web.Request, move: BankMove) -> web.Response:
    user_id = current_user_id(request)
    raw = await read_json_object(request)
    body = validate_body(BankTransferBody, raw)
    banking = node_of(request).banking

    async def accept(key: IdempotencyKey | None) -> Transfer | Replay:
        return await banking.request(move, user_id, body.wallet, body.amount, body.currency, key)

    # Pending transfers are ledger changes: their answer is kept with them.
    return await answer_once(request, raw, accept, status=202, stores_success=True)
