"""Helpers for tests that drive the wallet over HTTP: a checked client and a test user.

A plain module beside the root conftest (tests/http is no package: a package named ``http``
would shadow the standard library's).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from multidict import CIMultiDict

# Long enough that PyJWT never warns about a short HMAC key (warnings are errors here).
JWT_SECRET = "http-tests-jwt-secret-0123456789-abcdefghijklmnopqrstuvwxyz-0123456789"
BANK_SECRET = "http-tests-bank-secret-0123456789-abcdefghijklmnopqrstu"
# The bank keeps its own schema so that the bank's own tests never empty it under us.
BANK_SCHEMA = "bank_http"
PASSWORD = "correct horse battery staple"

# Every test talks from 127.0.0.1 and signs up many users, so the throttles that count per
# address or per user are opened wide on shared nodes, and tested on nodes of their own.
OPEN_THROTTLES: dict[str, Any] = {
    **{
        f"throttle_{rule}": "1000000/minute"
        for rule in (
            "login_account",
            "login_ip",
            "signup_ip",
            "money_user",
            "lookup_user",
            "email_code_user",
            "email_resend_user",
            "bank_link_user",
            "password_user",
        )
    },
    "wallet_debits_per_second": 1_000_000.0,
    "wallet_debit_burst": 1_000_000,
}


@dataclass
class Answer:
    """A response, read in full: status, decoded JSON (or text) and headers."""

    status: int
    body: Any
    headers: CIMultiDict[str]  # header names are case-insensitive
    text: str

    @property
    def error_code(self) -> str | None:
        """The contract's error code, when the body is an error."""
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            return str(self.body["error"].get("code"))
        return None


class Api:
    """Drives the app over HTTP and checks what every answer must satisfy."""

    def __init__(self, client: TestClient[web.Request, web.Application]) -> None:
        self.client = client

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        data: bytes | str | None = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> Answer:
        """Send one request; the answer is checked for leaks before it is returned."""
        all_headers = dict(headers or {})
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        async with self.client.request(
            method, path, json=json, data=data, headers=all_headers, params=params
        ) as response:
            text = await response.text()
            body: Any = text
            if response.content_type == "application/json":
                body = await response.json()
            answer = Answer(response.status, body, CIMultiDict(response.headers), text)
        _check_answer(answer)
        return answer

    async def get(self, path: str, **kwargs: Any) -> Answer:
        """GET ``path``."""
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> Answer:
        """POST ``path``."""
        return await self.request("POST", path, **kwargs)


def _check_answer(answer: Answer) -> None:
    # No input may ever produce an internal error, a traceback or a leaked secret.
    assert answer.status != 500, answer.text
    assert "Traceback" not in answer.text
    assert JWT_SECRET not in answer.text and BANK_SECRET not in answer.text
    assert answer.headers.get("X-Content-Type-Options") == "nosniff"
    if answer.status >= 400:
        assert answer.error_code is not None, answer.text
        assert isinstance(answer.body["error"]["message"], str)


@dataclass
class Person:
    """A signed-up, logged-in user with their first wallet."""

    email: str
    password: str
    name: str
    bank_account: str
    user_id: str
    token: str
    wallet: dict[str, Any]
    # The bank account's balance once linked: what it was opened with plus the micro-deposits.
    bank_start: int = 0

    @property
    def wallet_id(self) -> str:
        """The id of the first wallet (the bank account's currency)."""
        return str(self.wallet["id"])

    @property
    def headers(self) -> dict[str, str]:
        """The Authorization header of this user."""
        return {"Authorization": f"Bearer {self.token}"}


MakeUser = Callable[..., Awaitable[Person]]
Fund = Callable[[str, int], Awaitable[str]]


def pay_body(payer: Person, payee: Person, amount: Any = 100, /, **changes: Any) -> dict[str, Any]:
    """A transfer request from the payer's first wallet to the payee's; ``...`` drops a field."""
    body = {
        "from_wallet": payer.wallet_id,
        "to_wallet": payee.wallet_id,
        "amount": amount,
        "currency": payer.wallet["currency"],
    }
    body.update(changes)
    return {key: value for key, value in body.items() if value is not ...}


async def wallet_balance(api: Api, person: Person, wallet_id: str | None = None) -> int:
    """The balance of one of the person's wallets (their first by default), read over HTTP."""
    answer = await api.get(f"/api/v1/wallets/{wallet_id or person.wallet_id}", token=person.token)
    assert answer.status == 200
    return int(answer.body["balance"])


def unique_email(prefix: str = "user") -> str:
    """An e-mail address no other test uses (tests share one database)."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}@example.test"
