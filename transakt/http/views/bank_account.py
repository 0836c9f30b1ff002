"""The user's bank account: its link's state, the micro-deposit proof, approving another user."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from transakt.http.auth import current_user_id
from transakt.http.idempotency import answer_once
from transakt.http.schemas import ApproveBody, BankConfirmBody, validate_body
from transakt.http.views._shared import node_of
from transakt.models import BankLink
from transakt.services.idempotency import IdempotencyKey
from transakt.web.json import json_response, read_json_object

__all__ = ["approve_user", "bank_account", "confirm_deposits", "start_verification"]


class _Link:
    def __init__(self, link: BankLink) -> None:
        self.link = link

    def to_json(self) -> dict[str, Any]:
        return self.link.to_json()


class _Approval:
    def __init__(self, email: str) -> None:
        self.email = email

    def to_json(self) -> dict[str, Any]:
        return {"approved": self.email}


async def bank_account(request: web.Request) -> web.Response:
    """GET /api/v1/bank-account: the account (masked) and whether it is linked."""
    link = await node_of(request).links.status(current_user_id(request))
    return json_response(link.to_json())


async def start_verification(request: web.Request) -> web.Response:
    """POST /api/v1/bank-account/verification: the bank sends two new micro-deposits."""
    raw = await read_json_object(request, optional=True)
    node = node_of(request)
    user = await node.accounts.user(current_user_id(request))

    async def start(_key: IdempotencyKey | None) -> _Link:
        return _Link(await node.links.start(user))

    return await answer_once(request, raw, start, status=202, look_up_first=True)


async def confirm_deposits(request: web.Request) -> web.Response:
    """POST /api/v1/bank-account/confirm: the two amounts from the statement link the account."""
    raw = await read_json_object(request)
    body = validate_body(BankConfirmBody, raw)
    node = node_of(request)
    user = await node.accounts.user(current_user_id(request))

    async def confirm(_key: IdempotencyKey | None) -> _Link:
        return _Link(await node.links.confirm(user, body.amounts))

    return await answer_once(request, raw, confirm, status=200, look_up_first=True)


async def approve_user(request: web.Request) -> web.Response:
    """POST /api/v1/bank-account/approvals: the holder lets another user link this account."""
    raw = await read_json_object(request)
    body = validate_body(ApproveBody, raw)
    node = node_of(request)
    user = await node.accounts.user(current_user_id(request))

    async def approve(_key: IdempotencyKey | None) -> _Approval:
        await node.links.approve(user, body.email)
        return _Approval(body.email)

    return await answer_once(request, raw, approve, status=201, look_up_first=True)
