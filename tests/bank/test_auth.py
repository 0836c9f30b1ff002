"""Service tokens: only an unexpired HS256 token for the bank, from the wallet, gets in."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
import pytest

from transakt.bankapi import BankRequestRejected, issue_service_token
from transakt.gateway import BankClient

from .conftest import SECRET, Raw, RunningBank

OTHER_SECRET = "not-the-bank-secret-but-just-as-long-0123456789abcdef-0123456789abcdef"


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": "transakt-wallet",
        "aud": "transakt-bank",
        "iat": now,
        "exp": now + 60,
    }
    base.update(changes)
    return {key: value for key, value in base.items() if value is not None}


def b64(part: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()


def unsigned(payload: dict[str, Any]) -> str:
    """A token that claims "alg": "none" and carries no signature."""
    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(payload)}."


BAD_TOKENS = {
    "missing": None,
    "empty": "",
    "garbage": "not.a.token",
    "forged": jwt.encode(claims(), OTHER_SECRET, algorithm="HS256"),
    "expired": jwt.encode(claims(exp=int(time.time()) - 10), SECRET, algorithm="HS256"),
    "no_exp": jwt.encode(claims(exp=None), SECRET, algorithm="HS256"),
    "wrong_audience": jwt.encode(claims(aud="transakt-wallet"), SECRET, algorithm="HS256"),
    "wrong_issuer": jwt.encode(claims(iss="someone"), SECRET, algorithm="HS256"),
    "alg_none": unsigned(claims()),
    "other_algorithm": jwt.encode(claims(), SECRET, algorithm="HS512"),
}


@pytest.mark.parametrize("kind", sorted(BAD_TOKENS))
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/accounts/DE00000000000000000000"),
        ("POST", "/api/v1/transfers"),
        ("GET", "/admin/faults"),
    ],
)
async def test_bad_tokens_are_401(raw: Raw, kind: str, method: str, path: str) -> None:
    status, body = await raw(method, path, json={}, token=BAD_TOKENS[kind])
    assert status == 401, body
    assert body["error"]["code"] == "unauthorized"


async def test_basic_scheme_is_401(raw: Raw) -> None:
    status, body = await raw(
        "GET", "/admin/faults", token=None, headers={"Authorization": "Basic dXNlcjpwYXNz"}
    )
    assert (status, body["error"]["code"]) == (401, "unauthorized")


async def test_issued_token_is_accepted(raw: Raw) -> None:
    status, _ = await raw("GET", "/admin/faults", token=issue_service_token(SECRET, ttl=5))
    assert status == 200


async def test_client_with_the_wrong_secret_is_refused(bank: RunningBank) -> None:
    async with BankClient(bank.url, OTHER_SECRET) as client:
        with pytest.raises(BankRequestRejected) as caught:
            await client.create_account("Mallory", "EUR", 10**9)
    assert (caught.value.status, caught.value.code) == (401, "unauthorized")
