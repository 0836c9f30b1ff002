"""Bad input: always a 422 in the contract's error shape, never a 500, and nothing changes."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from transakt.gateway import BankClient

from .conftest import SCHEMA, Raw

BAD_AMOUNTS: list[Any] = [1.5, 100.0, "100", 0, -5, 10**30, True, None, [], {}, float("nan")]
BAD_CURRENCIES: list[Any] = ["eur", "EURO", "XXX", 978, "", None]
BAD_IDS: list[Any] = ["", "   ", "x" * 256, 7, None, "nul\x00byte", ["a"]]
BAD_DIRECTIONS: list[Any] = ["DEBIT", "withdraw", "", None, 1]


def transfer_body(valid_account: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "t-bad",
        "account": valid_account,
        "direction": "debit",
        "amount": 10,
        "currency": "EUR",
    }
    body.update(changes)
    return body


def variants(account: str) -> list[dict[str, Any]]:
    cases = [transfer_body(account, amount=value) for value in BAD_AMOUNTS]
    cases += [transfer_body(account, currency=value) for value in BAD_CURRENCIES]
    cases += [transfer_body(account, id=value) for value in BAD_IDS]
    cases += [transfer_body(account, direction=value) for value in BAD_DIRECTIONS]
    cases += [transfer_body(account, account=value) for value in ["", None, 5, "y" * 65]]
    for field in ("id", "account", "direction", "amount", "currency"):
        body = transfer_body(account)
        del body[field]
        cases.append(body)
    return cases


def assert_validation_error(status: int, body: Any) -> None:
    assert status == 422, body
    assert body["error"]["code"] == "validation_error"
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


async def test_bad_transfers_are_422_and_change_nothing(
    bank_client: BankClient, raw: Raw, bank_db: asyncpg.Pool
) -> None:
    account = (await bank_client.create_account("Ada", "EUR", 1_000)).account
    for body in variants(account):
        # json.dumps would refuse NaN under allow_nan=False; the default writes it, as a
        # careless client might.
        status, answer = await raw("POST", "/api/v1/transfers", json=body)
        assert_validation_error(status, answer)
    assert await bank_db.fetchval(f"SELECT count(*) FROM {SCHEMA}.transfers") == 0
    found = await bank_client.get_account(account)
    assert found is not None and found.balance == 1_000


@pytest.mark.parametrize(
    "data",
    [b"", b"{", b"not json", b"[1, 2]", b'"text"', b"null", b"\xff\xfe", b"[" * 60_000],
)
async def test_bad_json_is_422(raw: Raw, data: bytes) -> None:
    status, body = await raw(
        "POST", "/api/v1/transfers", data=data, headers={"Content-Type": "application/json"}
    )
    assert_validation_error(status, body)


async def test_a_body_over_the_limit_is_413(raw: Raw) -> None:
    # The bank reads bodies as the wallet does (transakt.web.json): 64 KiB at most.
    status, body = await raw(
        "POST",
        "/api/v1/transfers",
        data=b"[" * 100_000,
        headers={"Content-Type": "application/json"},
    )
    assert (status, body["error"]["code"]) == (413, "payload_too_large")


@pytest.mark.parametrize(
    "body",
    [
        {"currency": "EUR", "balance": 1},
        {"name": "", "currency": "EUR", "balance": 1},
        {"name": "Ada", "currency": "eur", "balance": 1},
        {"name": "Ada", "currency": "EUR", "balance": -1},
        {"name": "Ada", "currency": "EUR", "balance": 1.0},
        {"name": "Ada", "currency": "EUR", "balance": "1"},
        {"name": "Ada", "currency": "EUR", "balance": 10**16},
        {"name": "Ada", "currency": "EUR", "balance": False},
        {"name": "Ada", "currency": "EUR"},
        {"name": "x" * 201, "currency": "EUR", "balance": 1},
        {"name": 42, "currency": "EUR", "balance": 1},
    ],
)
async def test_bad_accounts_are_422(raw: Raw, bank_db: asyncpg.Pool, body: dict[str, Any]) -> None:
    status, answer = await raw("POST", "/api/v1/accounts", json=body)
    assert_validation_error(status, answer)
    assert await bank_db.fetchval(f"SELECT count(*) FROM {SCHEMA}.accounts") == 0


async def test_bad_verify_name_is_422(bank_client: BankClient, raw: Raw) -> None:
    account = (await bank_client.create_account("Ada", "EUR", 0)).account
    status, body = await raw("POST", f"/api/v1/verify-user/{account}", json={"name": 5})
    assert_validation_error(status, body)


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=abc", "limit=99999999", "cursor=-1", "cursor=²"]
)
async def test_bad_list_queries_are_422(bank_client: BankClient, raw: Raw, query: str) -> None:
    account = (await bank_client.create_account("Ada", "EUR", 0)).account
    status, body = await raw("GET", f"/api/v1/accounts/{account}/transfers?{query}")
    assert_validation_error(status, body)


async def test_unknown_routes_and_methods_keep_the_error_shape(raw: Raw) -> None:
    status, body = await raw("GET", "/api/v1/nowhere")
    assert (status, body["error"]["code"]) == (404, "not_found")
    status, body = await raw("DELETE", "/api/v1/transfers")
    assert (status, body["error"]["code"]) == (405, "method_not_allowed")
    status, body = await raw("GET", "/api/v1/accounts/" + "9" * 300)
    assert (status, body["error"]["code"]) == (404, "not_found")
