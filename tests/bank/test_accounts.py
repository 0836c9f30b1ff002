"""Accounts: opening, reading, verify-user, and the LRU cache in front of the database."""

from __future__ import annotations

import re

import asyncpg
import pytest

from transakt.bankapi import BankAccount, BankRequestRejected
from transakt.gateway import BankClient

from .conftest import SCHEMA, Raw, RunningBank


def metric(text: str, name: str) -> float:
    """The value of an unlabelled sample in Prometheus text."""
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} not in metrics"
    return float(match.group(1))


async def test_create_and_get_account(bank_client: BankClient) -> None:
    created = await bank_client.create_account("Ada Lovelace", "EUR", 10_000)
    assert re.fullmatch(r"DE\d{20}", created.account)
    assert created == BankAccount(created.account, "Ada Lovelace", "EUR", 10_000)
    assert await bank_client.get_account(created.account) == created


async def test_account_numbers_are_unique(bank_client: BankClient) -> None:
    numbers = {(await bank_client.create_account("N", "EUR", 0)).account for _ in range(50)}
    assert len(numbers) == 50


async def test_zero_opening_balance_is_allowed(bank_client: BankClient) -> None:
    created = await bank_client.create_account("Empty", "JPY", 0)
    assert created.balance == 0


async def test_unknown_account_is_404(bank_client: BankClient, raw: Raw) -> None:
    assert await bank_client.get_account("DE00000000000000000000") is None
    status, body = await raw("GET", "/api/v1/accounts/DE00000000000000000000")
    assert status == 404
    assert body["error"]["code"] == "not_found"


async def test_verify_user_known_and_unknown(bank_client: BankClient, raw: Raw) -> None:
    created = await bank_client.create_account("Grace Hopper", "USD", 500)
    verified = await bank_client.verify_user(created.account)
    assert verified == BankAccount(created.account, "Grace Hopper", "USD")
    assert await bank_client.verify_user("DE99999999999999999999") is None
    status, body = await raw("POST", "/api/v1/verify-user/DE99999999999999999999", json={})
    assert status == 404
    assert body["error"]["code"] == "not_found"
    # The contract's shape: no balance is revealed by verify-user.
    status, body = await raw("POST", f"/api/v1/verify-user/{created.account}")
    assert (status, body) == (
        200,
        {"account": created.account, "name": "Grace Hopper", "currency": "USD"},
    )


async def test_verify_user_with_a_name_says_whether_it_matches(bank_client: BankClient) -> None:
    created = await bank_client.create_account("Grace  Hopper", "USD", 0)
    same = await bank_client.verify_user(created.account, name="grace hopper")
    other = await bank_client.verify_user(created.account, name="Alan Turing")
    assert same is not None and same.name_matches is True
    assert other is not None and other.name_matches is False


async def test_account_opened_after_a_failed_lookup_is_found(bank_client: BankClient) -> None:
    # A miss must not be cached: the next look-up sees the account as soon as it exists.
    assert await bank_client.verify_user("DE12345678901234567890") is None
    created = await bank_client.create_account("Late", "EUR", 0)
    assert await bank_client.verify_user(created.account) is not None


async def test_cache_counters_on_metrics(bank_client: BankClient, raw: Raw) -> None:
    created = await bank_client.create_account("Cached", "EUR", 100)
    _, text = await raw("GET", "/metrics", token=None)
    hits, misses = (
        metric(text, "bank_account_cache_hits_total"),
        metric(text, "bank_account_cache_misses_total"),
    )

    await bank_client.verify_user(created.account)  # first look-up: database
    await bank_client.verify_user(created.account)  # then memory
    await bank_client.get_account(created.account)  # identity from memory, balance fresh
    _, text = await raw("GET", "/metrics", token=None)
    assert metric(text, "bank_account_cache_misses_total") == misses + 1
    assert metric(text, "bank_account_cache_hits_total") == hits + 2


async def test_balance_is_fresh_although_identity_is_cached(bank_client: BankClient) -> None:
    created = await bank_client.create_account("Fresh", "EUR", 100)
    assert (await bank_client.get_account(created.account)) == created
    await bank_client.transfer("t-fresh", created.account, "credit", 50, "EUR")
    account = await bank_client.get_account(created.account)
    assert account is not None and account.balance == 150


async def test_list_transfers_of_unknown_account_is_refused(bank_client: BankClient) -> None:
    with pytest.raises(BankRequestRejected) as caught:
        await bank_client.list_transfers("DE00000000000000000001")
    assert caught.value.status == 404


async def test_healthz_needs_no_token(raw: Raw, bank: RunningBank) -> None:
    assert await raw("GET", "/healthz", token=None) == (200, {"status": "ok"})


async def test_a_new_account_comes_with_a_passcode_shown_once(
    bank_client: BankClient, raw: Raw, bank_db: asyncpg.Pool
) -> None:
    status, body = await raw(
        "POST", "/api/v1/accounts", json={"name": "Ada", "currency": "EUR", "balance": 1}
    )
    assert status == 201
    passcode = body["passcode"]
    assert isinstance(passcode, str) and 8 <= len(passcode) <= 128 and passcode.isascii()
    # Only a salted hash is kept, and no other answer ever shows the passcode.
    stored = await bank_db.fetchval(f"SELECT passcode_hash FROM {SCHEMA}.accounts")
    assert passcode not in stored
    for method, path in [
        ("GET", f"/api/v1/accounts/{body['account']}"),
        ("POST", f"/api/v1/verify-user/{body['account']}"),
    ]:
        assert "passcode" not in (await raw(method, path))[1]
    created = await bank_client.create_account("Ada", "EUR", 1)
    assert created.passcode is not None and created.passcode != passcode
    assert created.passcode not in repr(created)  # never in a log line


async def test_a_chosen_number_and_passcode(bank_client: BankClient) -> None:
    created = await bank_client.create_account(
        "Demo Holder", "EUR", 2_500, account="DEMO0001", passcode="open sesame 42!"
    )
    assert (created.account, created.passcode, created.balance) == (
        "DEMO0001",
        "open sesame 42!",
        2_500,
    )
    assert await bank_client.get_account("DEMO0001") == created
    statement = await bank_client.statement("DEMO0001", "open sesame 42!")
    assert (statement.name, statement.balance) == ("Demo Holder", 2_500)


async def test_a_taken_number_is_account_exists(bank_client: BankClient, raw: Raw) -> None:
    first = await bank_client.create_account("First", "EUR", 10, account="TAKEN1")
    with pytest.raises(BankRequestRejected) as caught:
        await bank_client.create_account("Second", "USD", 20, account="TAKEN1")
    assert (caught.value.status, caught.value.code) == (409, "account_exists")
    status, body = await raw(
        "POST",
        "/api/v1/accounts",
        json={"name": "Third", "currency": "EUR", "balance": 0, "account": "TAKEN1"},
    )
    assert (status, body["error"]["code"]) == (409, "account_exists")
    assert await bank_client.get_account("TAKEN1") == first


async def test_names_are_stored_by_the_shared_text_rule(bank_client: BankClient) -> None:
    created = await bank_client.create_account("  Jose\u0301\u00a0\u00a0Mu\u0308ller ", "EUR", 0)
    assert created.name == "José Müller"  # NFC, plain single spaces, trimmed
    found = await bank_client.verify_user(created.account)
    assert found is not None and found.name == "José Müller"


@pytest.mark.parametrize(
    "name",
    [
        "Ada\u202eecalevoL",  # right-to-left override
        "Ada\u2066Lovelace\u2069",  # isolates
        "Ada\u200bLovelace",  # zero-width space
        "Ada\u200dLovelace",  # a joiner outside an emoji
        "Ada\ufeff",  # byte order mark
        "Ada\x00",
        "Ada\nLovelace",
        "\u00a0\u2009",  # only spaces
    ],
)
async def test_invisible_or_control_characters_in_a_name_are_refused(
    raw: Raw, bank_db: asyncpg.Pool, name: str
) -> None:
    status, body = await raw(
        "POST", "/api/v1/accounts", json={"name": name, "currency": "EUR", "balance": 0}
    )
    assert (status, body["error"]["code"]) == (422, "validation_error")
    assert body["error"]["field"] == "name"
    assert await bank_db.fetchval(f"SELECT count(*) FROM {SCHEMA}.accounts") == 0


async def test_verify_user_refuses_such_a_name_too(bank_client: BankClient, raw: Raw) -> None:
    created = await bank_client.create_account("Ada Lovelace", "EUR", 0)
    status, body = await raw(
        "POST", f"/api/v1/verify-user/{created.account}", json={"name": "Ada\u200bLovelace"}
    )
    assert (status, body["error"]["code"], body["error"]["field"]) == (
        422,
        "validation_error",
        "name",
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("account", ""),
        ("account", "de123"),
        ("account", "DE-123"),
        ("account", "X" * 65),
        ("account", 123),
        ("passcode", "short"),
        ("passcode", "x" * 129),
        ("passcode", "caf\u00e9-latte"),
        ("passcode", "tab\there-12"),
        ("passcode", 12345678),
    ],
)
async def test_bad_chosen_numbers_and_passcodes_are_422(
    raw: Raw, bank_db: asyncpg.Pool, field: str, value: object
) -> None:
    body = {"name": "Ada", "currency": "EUR", "balance": 0, field: value}
    status, answer = await raw("POST", "/api/v1/accounts", json=body)
    assert (status, answer["error"]["code"], answer["error"]["field"]) == (
        422,
        "validation_error",
        field,
    )
    assert await bank_db.fetchval(f"SELECT count(*) FROM {SCHEMA}.accounts") == 0
