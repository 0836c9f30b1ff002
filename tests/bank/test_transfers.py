"""Transfers: debits and credits applied once per id, refusals stored with their reason."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from transakt.bankapi import BankRequestRejected, BankTransferResult
from transakt.gateway import BankClient

from .conftest import SCHEMA, Raw


async def balance(bank_client: BankClient, account: str) -> int | None:
    found = await bank_client.get_account(account)
    assert found is not None
    return found.balance


async def test_debit_and_credit_move_the_balance(bank_client: BankClient) -> None:
    account = (await bank_client.create_account("Ada", "EUR", 1_000)).account
    debit = await bank_client.transfer("t-1", account, "debit", 300, "EUR")
    assert debit == BankTransferResult("t-1", "completed", account, "debit", 300, "EUR")
    assert debit.completed
    assert await balance(bank_client, account) == 700
    credit = await bank_client.transfer("t-2", account, "credit", 50, "EUR")
    assert credit.status == "completed" and credit.reason is None
    assert await balance(bank_client, account) == 750


async def test_answer_has_the_contract_shape(bank_client: BankClient, raw: Raw) -> None:
    account = (await bank_client.create_account("Ada", "EUR", 1_000)).account
    body = {"id": "t-shape", "account": account, "direction": "debit", "amount": 1}
    status, answer = await raw("POST", "/api/v1/transfers", json={**body, "currency": "EUR"})
    assert status == 200
    assert answer["id"] == "t-shape" and answer["status"] == "completed"
    assert "reason" not in answer


async def test_same_id_fifty_times_at_once_applies_once(
    bank_client: BankClient, bank_db: asyncpg.Pool
) -> None:
    account = (await bank_client.create_account("Ada", "EUR", 1_000)).account
    results = await asyncio.gather(
        *(bank_client.transfer("t-once", account, "debit", 100, "EUR") for _ in range(50))
    )
    assert {result.status for result in results} == {"completed"}
    assert await balance(bank_client, account) == 900
    stored = await bank_db.fetchval(f"SELECT count(*) FROM {SCHEMA}.transfers WHERE id = 't-once'")
    assert stored == 1


async def test_replay_returns_the_stored_outcome(bank_client: BankClient, raw: Raw) -> None:
    account = (await bank_client.create_account("Ada", "EUR", 100)).account
    first = await bank_client.transfer("t-r", account, "debit", 500, "EUR")
    assert first.status == "rejected" and first.reason == "insufficient_funds"
    # Money arrives; the replay still answers the stored refusal, it is not re-decided.
    await bank_client.transfer("t-top-up", account, "credit", 1_000, "EUR")
    assert await bank_client.transfer("t-r", account, "debit", 500, "EUR") == first
    body = {"id": "t-r", "account": account, "direction": "debit", "amount": 500}
    status, _ = await raw("POST", "/api/v1/transfers", json={**body, "currency": "EUR"})
    assert status == 200
    assert await balance(bank_client, account) == 1_100


async def test_replay_with_a_different_body_is_refused(bank_client: BankClient) -> None:
    account = (await bank_client.create_account("Ada", "EUR", 1_000)).account
    await bank_client.transfer("t-x", account, "debit", 100, "EUR")
    with pytest.raises(BankRequestRejected) as caught:
        await bank_client.transfer("t-x", account, "debit", 101, "EUR")
    assert (caught.value.status, caught.value.code) == (422, "idempotency_key_reused")
    assert await balance(bank_client, account) == 900


async def test_concurrent_reuse_of_one_id_with_different_bodies(bank_client: BankClient) -> None:
    first = (await bank_client.create_account("A", "EUR", 1_000)).account
    second = (await bank_client.create_account("B", "EUR", 1_000)).account
    outcomes = await asyncio.gather(
        *(
            bank_client.transfer("t-race", first if n % 2 else second, "debit", 10, "EUR")
            for n in range(20)
        ),
        return_exceptions=True,
    )
    applied = [o for o in outcomes if isinstance(o, BankTransferResult)]
    refused = [o for o in outcomes if isinstance(o, BankRequestRejected)]
    assert len(applied) + len(refused) == 20
    assert len({o.account for o in applied}) == 1  # one body won, every replay of it agrees
    assert all(error.code == "idempotency_key_reused" for error in refused)
    total = (await balance(bank_client, first) or 0) + (await balance(bank_client, second) or 0)
    assert total == 1_990


async def test_insufficient_funds_is_rejected(bank_client: BankClient) -> None:
    account = (await bank_client.create_account("Ada", "EUR", 100)).account
    result = await bank_client.transfer("t-big", account, "debit", 101, "EUR")
    assert (result.status, result.reason) == ("rejected", "insufficient_funds")
    assert await balance(bank_client, account) == 100


async def test_unknown_account_is_rejected(bank_client: BankClient) -> None:
    result = await bank_client.transfer("t-u", "DE00000000000000000000", "credit", 5, "EUR")
    assert (result.status, result.reason) == ("rejected", "account_not_found")
    assert await bank_client.get_transfer("t-u") == result


async def test_currency_mismatch_is_rejected(bank_client: BankClient) -> None:
    account = (await bank_client.create_account("Ada", "EUR", 100)).account
    result = await bank_client.transfer("t-c", account, "credit", 5, "USD")
    assert (result.status, result.reason) == ("rejected", "currency_mismatch")
    assert await balance(bank_client, account) == 100


async def test_concurrent_debits_never_overdraw(bank_client: BankClient) -> None:
    account = (await bank_client.create_account("Ada", "EUR", 1_000)).account
    results = await asyncio.gather(
        *(bank_client.transfer(f"t-{n}", account, "debit", 70, "EUR") for n in range(30))
    )
    completed = sum(result.completed for result in results)
    assert completed == 14  # 14 * 70 = 980 <= 1000 < 15 * 70
    assert await balance(bank_client, account) == 1_000 - 70 * completed


async def test_get_transfer_and_list_for_reconciliation(bank_client: BankClient) -> None:
    account = (await bank_client.create_account("Ada", "EUR", 100)).account
    assert await bank_client.get_transfer("t-never") is None
    made = [
        await bank_client.transfer("t-a", account, "credit", 10, "EUR"),
        await bank_client.transfer("t-b", account, "debit", 500, "EUR"),
        await bank_client.transfer("t-c", account, "debit", 20, "EUR"),
    ]
    assert await bank_client.get_transfer("t-b") == made[1]
    assert await bank_client.list_transfers(account) == made


async def test_list_follows_pages(bank_client: BankClient, raw: Raw) -> None:
    account = (await bank_client.create_account("Ada", "EUR", 0)).account
    for n in range(5):
        await bank_client.transfer(f"t-p{n}", account, "credit", 1, "EUR")
    status, page = await raw("GET", f"/api/v1/accounts/{account}/transfers?limit=2")
    assert status == 200
    assert [item["id"] for item in page["items"]] == ["t-p0", "t-p1"]
    assert page["next_cursor"] is not None
    listed = await bank_client.list_transfers(account)
    assert [item.id for item in listed] == [f"t-p{n}" for n in range(5)]


async def test_ids_with_path_characters_round_trip(bank_client: BankClient) -> None:
    account = (await bank_client.create_account("Ada", "EUR", 100)).account
    odd = "wd/../1 ?#%é"
    made = await bank_client.transfer(odd, account, "debit", 1, "EUR")
    assert await bank_client.get_transfer(odd) == made
