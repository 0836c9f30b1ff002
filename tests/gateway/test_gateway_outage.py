"""The bank down, slow, refusing, and Redis losing the buffer: nothing lost, nothing twice."""

from __future__ import annotations

import redis.asyncio as aioredis
from httpkit import Person

from gateway.kit import (
    DEPOSITS,
    GATEWAY_BANK_SCHEMA,
    WITHDRAWALS,
    Bank,
    Nodes,
    WalletNode,
    assert_reconciled,
    wait_for,
)
from transakt.gateway.constants import BANK_STREAM
from transakt.testing import fund_wallet


async def _funded(wallet: WalletNode, bank: Bank, deposit: int, balance: int = 10_000) -> Person:
    """A user with ``deposit`` already posted to their wallet and the rest left at the bank."""
    person = await wallet.signup(bank, balance=balance)
    answer = await wallet.move(DEPOSITS, person, deposit)
    await wait_for(lambda: wallet.settled(answer.body["id"]), "the opening deposit")
    return person


async def _requests_while_down(wallet: WalletNode, people: list[Person]) -> dict[str, int]:
    """Two deposits and two withdrawals per person; their ids with the bank's balance change."""
    moved: dict[str, int] = {}
    for person in people:
        for amount in (101, 102):
            deposit = await wallet.move(DEPOSITS, person, amount)
            assert deposit.status == 202, deposit.text
            moved[deposit.body["id"]] = -amount
            withdrawal = await wallet.move(WITHDRAWALS, person, amount * 2)
            assert withdrawal.status == 202, withdrawal.text
            moved[withdrawal.body["id"]] = amount * 2
    return moved


async def _assert_applied_once(bank: Bank, people: list[Person], moved: dict[str, int]) -> None:
    """Every request reached the bank, and no id is there twice."""
    at_bank: list[str] = []
    for person in people:
        at_bank += await bank.transfer_ids(person.bank_account)
    assert len(at_bank) == len(set(at_bank))
    assert set(moved) <= set(at_bank)


async def test_bank_down_then_back_completes_every_request_once(
    bank: Bank, nodes: Nodes, gateway_redis: aioredis.Redis
) -> None:
    # A longer reset so the test sees the breaker open (it half-opens to probe every second).
    wallet = await nodes.open(bank, breaker_reset_seconds=1.0, breaker_reset_max_seconds=1.0)
    people = [await _funded(wallet, bank, deposit=5_000) for _ in range(3)]
    bank_before = {p.bank_account: await bank.balance(p.bank_account) for p in people}

    await bank.stop()
    signup = await wallet.api.post(
        "/api/v1/auth/signup",
        json={
            "email": "late@example.test",
            "password": "correct horse battery staple",
            "name": "Late Comer",
            "bank_account": "DE12345678901234567890",
        },
    )
    assert (signup.status, signup.error_code) == (503, "bank_unavailable")
    assert int(signup.headers["Retry-After"]) >= 1

    moved = await _requests_while_down(wallet, people)
    for person in people:
        # Withdrawals hold at once: available drops, balance does not.
        shown = await wallet.wallet(person)
        assert shown["balance"] == 5_000
        assert shown["pending_out"] == (101 + 102) * 2
        assert shown["available"] == 5_000 - (101 + 102) * 2
        assert shown["pending_in"] == 101 + 102

    async def breaker_open() -> bool:
        ready = await wallet.api.get("/readyz")
        assert ready.status == 200  # the node still serves: the bank is information here
        return bool(ready.body["checks"]["bank"]["breaker"] == "open")

    await wait_for(breaker_open, "the breaker to open")
    metrics = await wallet.api.get("/metrics")
    assert 'transakt_bank_breaker_state{state="open"} 1' in metrics.text

    async def all_buffered() -> bool:
        return int(await gateway_redis.xlen(BANK_STREAM)) == len(moved)

    await wait_for(all_buffered, "every request to be buffered")
    assert await wallet.settled(*moved) is False

    await bank.start()
    await wait_for(lambda: wallet.settled(*moved), "the buffer to drain")
    for transfer_id in moved:
        assert await wallet.status(transfer_id) == "posted"
    for person in people:
        shown = await wallet.wallet(person)
        expected = 5_000 + 101 + 102 - (101 + 102) * 2
        assert (shown["balance"], shown["available"]) == (expected, expected)
        assert (shown["pending_in"], shown["pending_out"]) == (0, 0)
        assert await bank.balance(person.bank_account) == bank_before[person.bank_account] + (
            (101 + 102) * 2 - 101 - 102
        )
    await _assert_applied_once(bank, people, moved)
    await wait_for(lambda: _empty(gateway_redis), "the stream to empty")
    await assert_reconciled(wallet)


async def _empty(redis: aioredis.Redis) -> bool:
    return int(await redis.xlen(BANK_STREAM)) == 0


async def test_slow_bank_opens_the_breaker_on_timeouts(bank: Bank, nodes: Nodes) -> None:
    wallet = await nodes.open(bank, bank_call_timeout_seconds=0.3)
    person = await _funded(wallet, bank, deposit=4_000)
    gateway = wallet.node.gateway
    opened_before = gateway.breaker.opened_total

    await bank.client.set_faults(latency_ms=800)
    try:
        moved = await _requests_while_down(wallet, [person])

        async def opened() -> bool:
            return gateway.breaker.opened_total > opened_before

        await wait_for(opened, "timeouts to open the breaker")
        assert gateway.breaker.snapshot().failures_total >= 3
    finally:
        await bank.client.set_faults(latency_ms=0)

    # Calls that timed out may still have been applied late by the bank: the retries replay
    # them, and the wallet settles each once.
    await wait_for(lambda: wallet.settled(*moved), "the buffer to drain")
    for transfer_id in moved:
        assert await wallet.status(transfer_id) == "posted"
    await _assert_applied_once(bank, [person], moved)
    expected = 4_000 + 101 + 102 - (101 + 102) * 2
    assert (await wallet.wallet(person))["balance"] == expected
    await assert_reconciled(wallet)


async def test_bank_refusals_void_with_the_reason_and_release_holds(
    bank: Bank, nodes: Nodes
) -> None:
    wallet = await nodes.open(bank)
    person = await wallet.signup(bank, balance=1_000)

    too_much = await wallet.move(DEPOSITS, person, 5_000)
    await wait_for(lambda: wallet.settled(too_much.body["id"]), "the refusal")
    refused = await wallet.api.get(f"/api/v1/transfers/{too_much.body['id']}", token=person.token)
    assert refused.body["status"] == "voided"
    assert refused.body["reason"] == "insufficient_funds"
    shown = await wallet.wallet(person)
    assert (shown["balance"], shown["pending_in"]) == (0, 0)

    # A USD wallet cannot pay out to a EUR bank account: refused before anything is held.
    created = await wallet.api.post("/api/v1/wallets", token=person.token, json={"currency": "USD"})
    usd = created.body["id"]
    await fund_wallet(wallet.node.pool, usd, 700)
    mismatch = await wallet.move(WITHDRAWALS, person, 300, wallet=usd, currency="USD")
    assert (mismatch.status, mismatch.error_code) == (422, "currency_mismatch")
    after = await wallet.api.get(f"/api/v1/wallets/{usd}", token=person.token)
    assert (after.body["balance"], after.body["pending_out"]) == (700, 0)

    # The account is closed at the bank after it was linked: the bank refuses the payout, the
    # withdrawal is voided with its reason and the hold released.
    await fund_wallet(wallet.node.pool, person.wallet_id, 700)
    await wallet.node.pool.execute(
        f'DELETE FROM "{GATEWAY_BANK_SCHEMA}".accounts WHERE account = $1', person.bank_account
    )
    answer = await wallet.move(WITHDRAWALS, person, 300)
    assert answer.status == 202, answer.text
    await wait_for(lambda: wallet.settled(answer.body["id"]), "the refusal")
    history = await wallet.api.get(
        f"/api/v1/wallets/{person.wallet_id}/transactions", token=person.token
    )
    withdrawal = history.body["items"][0]
    assert (withdrawal["kind"], withdrawal["status"]) == ("withdrawal", "voided")
    assert withdrawal["reason"] == "account_not_found"
    shown = await wallet.wallet(person)
    assert (shown["balance"], shown["available"], shown["pending_out"]) == (700, 700, 0)
    assert await bank.client.get_account(person.bank_account) is None


async def test_redis_flushed_while_buffered_loses_nothing(
    bank: Bank, nodes: Nodes, gateway_redis: aioredis.Redis
) -> None:
    wallet = await nodes.open(bank)
    people = [await _funded(wallet, bank, deposit=2_000) for _ in range(2)]
    await bank.stop()
    moved = await _requests_while_down(wallet, people)

    async def buffered(count: int) -> bool:
        return int(await gateway_redis.xlen(BANK_STREAM)) == count

    await wait_for(lambda: buffered(len(moved)), "every request to be buffered")
    await gateway_redis.flushdb()
    # Still down: the sweep rebuilds the buffer from PostgreSQL, every request once.
    await wait_for(lambda: buffered(len(moved)), "the buffer to be rebuilt")

    await bank.start()
    await wait_for(lambda: wallet.settled(*moved), "the buffer to drain")
    for transfer_id in moved:
        assert await wallet.status(transfer_id) == "posted"
    await _assert_applied_once(bank, people, moved)
    await assert_reconciled(wallet)


async def test_without_redis_the_sweep_carries_requests_through_an_outage(
    bank: Bank, nodes: Nodes
) -> None:
    nodes.redis_url = None  # an in-memory buffer, refilled from PostgreSQL
    wallet = await nodes.open(bank)
    assert "redis" not in (await wallet.api.get("/readyz")).body["checks"]
    people = [await _funded(wallet, bank, deposit=1_000)]
    await bank.stop()
    moved = await _requests_while_down(wallet, people)
    await bank.start()
    await wait_for(lambda: wallet.settled(*moved), "the buffer to drain")
    await _assert_applied_once(bank, people, moved)
    await assert_reconciled(wallet)
