"""Accounts: opening, reading, verify-user, and the LRU cache in front of the database."""

from __future__ import annotations

import re

import pytest

from transakt.bank import BankAccount, BankClient, BankRequestRejected

from .conftest import Raw, RunningBank


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
