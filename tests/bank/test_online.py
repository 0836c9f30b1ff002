"""Online banking: the holder's statement behind HTTP Basic, and the throttle on passcodes."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import aiohttp
import asyncpg
import pytest

from transakt.bankapi import BankAccount, BankRequestRejected, Statement, issue_service_token
from transakt.errors import RateLimited
from transakt.gateway import BankClient
from transakt.sandbox.online import PasscodeThrottle, hash_passcode, passcode_matches

from .conftest import SCHEMA, SECRET, RunningBank

Online = Callable[..., Awaitable[tuple[int, Any, Mapping[str, str]]]]


def basic(account: str, passcode: str) -> str:
    return "Basic " + base64.b64encode(f"{account}:{passcode}".encode()).decode()


@pytest.fixture
async def online(bank: RunningBank) -> AsyncIterator[Online]:
    """GET the statement with any Authorization header: (status, JSON, headers)."""
    async with aiohttp.ClientSession() as session:

        async def get(
            authorization: str | None, query: str = ""
        ) -> tuple[int, Any, Mapping[str, str]]:
            headers = {"Authorization": authorization} if authorization is not None else {}
            url = f"{bank.url}/online/v1/statement{query}"
            async with session.get(url, headers=headers) as response:
                assert response.status != 500, await response.text()
                assert response.content_type == "application/json"
                return response.status, await response.json(), response.headers

        yield get


async def holder(
    bank_client: BankClient, name: str = "Ada Lovelace", balance: int = 0
) -> BankAccount:
    opened = await bank_client.create_account(name, "EUR", balance)
    assert opened.passcode is not None
    return opened


async def test_the_statement_shows_money_in_and_out_newest_first(
    bank_client: BankClient,
) -> None:
    opened = await holder(bank_client, balance=1_000)
    assert opened.passcode is not None
    await bank_client.transfer("t-top-up", opened.account, "debit", 300, "EUR")
    await bank_client.transfer("t-refused", opened.account, "debit", 10_000, "EUR")
    await bank_client.transfer("t-payout", opened.account, "credit", 50, "EUR")
    await bank_client.start_verification("v-1", opened.account, "Ada Lovelace")

    statement = await bank_client.statement(opened.account, opened.passcode)
    assert (statement.account, statement.name, statement.currency) == (
        opened.account,
        "Ada Lovelace",
        "EUR",
    )
    descriptions = [entry.description for entry in statement.entries]
    # Newest first; the refused debit moved nothing and is not shown.
    assert descriptions == [
        "TRANSAKT ACCTVERIFY",
        "TRANSAKT ACCTVERIFY",
        "TRANSAKT WALLET PAYOUT",
        "TRANSAKT WALLET TOP-UP",
    ]
    amounts = [entry.amount for entry in statement.entries]
    assert amounts[2:] == [50, -300]
    assert all(1 <= amount <= 99 for amount in amounts[:2])
    assert statement.balance == 1_000 - 300 + 50 + sum(amounts[:2])
    assert len({entry.id for entry in statement.entries}) == 4
    assert all(entry.at.endswith("Z") for entry in statement.entries)
    ats = [entry.at for entry in statement.entries]
    assert ats == sorted(ats, reverse=True)

    short = await bank_client.statement(opened.account, opened.passcode, limit=3)
    assert short.entries == statement.entries[:3]


async def test_the_statement_shape(bank_client: BankClient, online: Online) -> None:
    opened = await holder(bank_client, balance=10)
    assert opened.passcode is not None
    await bank_client.transfer("t-1", opened.account, "debit", 4, "EUR")
    status, body, headers = await online(basic(opened.account, opened.passcode))
    assert status == 200
    assert set(body) == {"account", "name", "currency", "balance", "entries"}
    assert body["balance"] == 6
    [entry] = body["entries"]
    assert set(entry) == {"id", "at", "description", "amount"}
    assert (entry["description"], entry["amount"]) == ("TRANSAKT WALLET TOP-UP", -4)
    assert Statement.from_json(body).to_json() == body
    assert headers["Cache-Control"] == "no-store"


async def test_missing_or_wrong_credentials_are_401(
    bank_client: BankClient, online: Online
) -> None:
    opened = await holder(bank_client)
    assert opened.passcode is not None
    for authorization in [
        None,
        "",
        "Basic",
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"no colon here").decode(),
        "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(),
        basic(opened.account, "wrong-passcode"),
        basic("DE00000000000000000000", opened.passcode),  # no such account
        basic(opened.account.lower(), opened.passcode),
        basic(opened.account, ""),
        f"Bearer {opened.passcode}",
    ]:
        status, body, headers = await online(authorization)
        assert (status, body["error"]["code"]) == (401, "unauthorized"), authorization
        assert headers["WWW-Authenticate"] == 'Basic realm="sandbox bank"'
    with pytest.raises(BankRequestRejected) as caught:
        await bank_client.statement(opened.account, "wrong-passcode")
    assert (caught.value.status, caught.value.code) == (401, "unauthorized")


async def test_the_service_token_does_not_open_a_statement(
    bank_client: BankClient, online: Online
) -> None:
    status, body, _ = await online(f"Bearer {issue_service_token(SECRET)}")
    assert (status, body["error"]["code"]) == (401, "unauthorized")


async def test_an_account_without_a_passcode_never_logs_in(
    bank_client: BankClient, online: Online, bank_db: asyncpg.Pool
) -> None:
    # Accounts opened before passcodes existed have none.
    opened = await holder(bank_client)
    assert opened.passcode is not None
    await bank_db.execute(f"UPDATE {SCHEMA}.accounts SET passcode_hash = NULL")
    status, _, _ = await online(basic(opened.account, opened.passcode))
    assert status == 401


async def test_more_than_five_wrong_passcodes_in_a_minute_are_throttled(
    bank_client: BankClient, online: Online
) -> None:
    opened = await holder(bank_client)
    other = await holder(bank_client, "Grace Hopper")
    assert opened.passcode is not None and other.passcode is not None
    for _ in range(5):
        status, _, _ = await online(basic(opened.account, "wrong-passcode"))
        assert status == 401
    status, body, headers = await online(basic(opened.account, "wrong-passcode"))
    assert (status, body["error"]["code"]) == (429, "rate_limited")
    assert 1 <= int(headers["Retry-After"]) <= 60
    assert body["error"]["retry_after"] == int(headers["Retry-After"])
    # While throttled even the right passcode is refused: a guess cannot be confirmed.
    status, _, _ = await online(basic(opened.account, opened.passcode))
    assert status == 429
    with pytest.raises(BankRequestRejected) as caught:
        await bank_client.statement(opened.account, opened.passcode)
    assert (caught.value.status, caught.value.code) == (429, "rate_limited")
    assert 1 <= caught.value.details["retry_after"] <= 60
    # Another account is not affected.
    assert (await bank_client.statement(other.account, other.passcode)).account == other.account


async def test_right_passcodes_are_never_counted(bank_client: BankClient) -> None:
    opened = await holder(bank_client)
    assert opened.passcode is not None
    for _ in range(12):
        await bank_client.statement(opened.account, opened.passcode)


async def test_concurrent_guesses_cannot_slip_past_the_limit(
    bank_client: BankClient, online: Online
) -> None:
    opened = await holder(bank_client)
    answers = await asyncio.gather(
        *(online(basic(opened.account, f"guess-{n:04d}")) for n in range(30))
    )
    statuses = sorted(status for status, _, _ in answers)
    assert statuses == [401] * 5 + [429] * 25


async def test_faults_do_not_touch_online_banking(bank_client: BankClient) -> None:
    opened = await holder(bank_client, balance=5)
    assert opened.passcode is not None
    await bank_client.set_faults(refuse_all=True)
    try:
        statement = await bank_client.statement(opened.account, opened.passcode)
    finally:
        await bank_client.set_faults(refuse_all=False)
    assert statement.balance == 5


@pytest.mark.parametrize("query", ["?limit=0", "?limit=1001", "?limit=x", "?limit=-1"])
async def test_bad_limits_are_422(bank_client: BankClient, online: Online, query: str) -> None:
    opened = await holder(bank_client)
    assert opened.passcode is not None
    status, body, _ = await online(basic(opened.account, opened.passcode), query)
    assert (status, body["error"]["code"]) == (422, "validation_error")


async def test_a_statement_holds_at_most_the_limit(bank_client: BankClient) -> None:
    opened = await holder(bank_client)
    assert opened.passcode is not None
    for n in range(4):
        await bank_client.transfer(f"t-{n}", opened.account, "credit", n + 1, "EUR")
    statement = await bank_client.statement(opened.account, opened.passcode, limit=2)
    assert [entry.amount for entry in statement.entries] == [4, 3]
    assert statement.balance == 10


def test_the_throttle_window_slides() -> None:
    now = [1000.0]
    throttle = PasscodeThrottle(limit=2, window=60, clock=lambda: now[0])
    throttle.reserve("A")
    now[0] += 30
    throttle.reserve("A")
    with pytest.raises(RateLimited) as caught:
        throttle.reserve("A")
    assert caught.value.retry_after == 30
    throttle.reserve("B")  # counted per account
    now[0] += 30  # the first wrong passcode leaves the window
    stamp = throttle.reserve("A")
    throttle.release("A", stamp)  # that one was right: not counted
    throttle.reserve("A")
    with pytest.raises(RateLimited):
        throttle.reserve("A")


def test_the_throttle_table_is_bounded() -> None:
    now = [0.0]
    throttle = PasscodeThrottle(limit=1, window=60, max_accounts=3, clock=lambda: now[0])
    for account in "ABCDE":
        throttle.reserve(account)
    assert "tracking=3" in repr(throttle)
    with pytest.raises(RateLimited):
        throttle.reserve("E")  # the newest are kept


def test_passcode_hashes_are_salted_and_checked() -> None:
    first, second = hash_passcode("correct-horse"), hash_passcode("correct-horse")
    assert first != second and "correct-horse" not in first
    assert passcode_matches("correct-horse", first) and passcode_matches("correct-horse", second)
    assert not passcode_matches("correct-hors", first)
    assert not passcode_matches("correct-horse", None)
    assert not passcode_matches("correct-horse", "sha256$zz$zz")
