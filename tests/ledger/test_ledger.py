"""The ledger's invariants, straight against PostgreSQL: what the database itself guarantees."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

import asyncpg
import pytest

from transakt.actors.ledger_writer import LedgerUnavailable, LedgerWriter
from transakt.errors import CurrencyMismatch, InsufficientFunds
from transakt.storage.ledger import commit_batch
from transakt.storage.records import (
    Applied,
    Duplicate,
    IdempotencyRecord,
    NewTransfer,
    Rejected,
    Settlement,
)

MakeWallet = Callable[..., Awaitable[str]]


def p2p(
    source: str, target: str, amount: int, currency: str = "EUR", **extra: object
) -> NewTransfer:
    return NewTransfer(
        id=str(extra.pop("id", f"trf_{uuid.uuid4().hex}")),
        kind="p2p",
        status="posted",
        from_account=source,
        to_account=target,
        amount=amount,
        currency=currency,
        memo=None,
        initiator_id=None,
        **extra,  # type: ignore[arg-type]
    )


async def balances(pool: asyncpg.Pool) -> dict[str, int]:
    rows = await pool.fetch("SELECT id, balance FROM accounts")
    return {row["id"]: row["balance"] for row in rows}


async def assert_invariants(pool: asyncpg.Pool) -> None:
    """Per currency the balances sum to zero; wallets never below zero; balances = transfers."""
    sums = await pool.fetch("SELECT currency, sum(balance) AS total FROM accounts GROUP BY 1")
    assert all(row["total"] == 0 for row in sums), sums
    negative = await pool.fetchval(
        "SELECT count(*) FROM accounts WHERE kind = 'wallet' AND balance - pending_out < 0"
    )
    assert negative == 0
    drift = await pool.fetch(
        """
        SELECT a.id, a.balance, coalesce(c.total, 0) - coalesce(d.total, 0) AS derived
        FROM accounts a
        LEFT JOIN (SELECT to_account, sum(amount) AS total FROM transfers
                   WHERE status = 'posted' GROUP BY 1) c ON c.to_account = a.id
        LEFT JOIN (SELECT from_account, sum(amount) AS total FROM transfers
                   WHERE status = 'posted' GROUP BY 1) d ON d.from_account = a.id
        WHERE a.balance <> coalesce(c.total, 0) - coalesce(d.total, 0)
        """
    )
    assert drift == [], drift


async def test_p2p_moves_money_and_writes_events(
    pool: asyncpg.Pool, make_wallet: MakeWallet
) -> None:
    alice, bob = await make_wallet(balance=1000), await make_wallet()
    async with pool.acquire() as connection:
        result = await commit_batch(connection, [p2p(alice, bob, 300)])
    assert isinstance(result.outcomes[0], Applied)
    assert result.outcomes[0].transfer.status == "posted"
    assert result.wallets[alice]["balance"] == 700
    assert result.wallets[bob]["balance"] == 300
    topics = await pool.fetch("SELECT topic FROM outbox ORDER BY id")
    assert [row["topic"] for row in topics].count("transfer.posted") == 2  # funding + p2p
    assert [row["topic"] for row in topics].count("balance.changed") == 3
    await assert_invariants(pool)


async def test_same_id_applies_once_within_and_across_batches(
    pool: asyncpg.Pool, make_wallet: MakeWallet
) -> None:
    alice, bob = await make_wallet(balance=1000), await make_wallet()
    transfer = p2p(alice, bob, 100)
    async with pool.acquire() as connection:
        first = await commit_batch(connection, [transfer, transfer])
        second = await commit_batch(connection, [transfer])
    assert isinstance(first.outcomes[0], Applied)
    assert isinstance(first.outcomes[1], Duplicate)
    assert isinstance(second.outcomes[0], Duplicate)
    assert (await balances(pool))[bob] == 100
    await assert_invariants(pool)


async def test_overdraft_in_a_batch_rejects_only_the_offender(
    pool: asyncpg.Pool, make_wallet: MakeWallet
) -> None:
    alice, bob, carol = (
        await make_wallet(balance=100),
        await make_wallet(),
        await make_wallet(balance=50),
    )
    batch = [p2p(carol, bob, 50), p2p(alice, bob, 80), p2p(alice, bob, 80)]
    async with pool.acquire() as connection:
        result = await commit_batch(connection, batch)
    kinds = [type(outcome) for outcome in result.outcomes]
    assert kinds == [Applied, Applied, Rejected]
    rejected = result.outcomes[2]
    assert isinstance(rejected, Rejected) and isinstance(rejected.error, InsufficientFunds)
    assert (await balances(pool))[bob] == 130
    await assert_invariants(pool)


async def test_currency_legs_must_match(pool: asyncpg.Pool, make_wallet: MakeWallet) -> None:
    euro, dollar = await make_wallet("EUR", balance=100), await make_wallet("USD")
    async with pool.acquire() as connection:
        result = await commit_batch(connection, [p2p(euro, dollar, 10, currency="EUR")])
    outcome = result.outcomes[0]
    assert isinstance(outcome, Rejected) and isinstance(outcome.error, CurrencyMismatch)
    await assert_invariants(pool)


async def test_hold_then_post_or_void(pool: asyncpg.Pool, make_wallet: MakeWallet) -> None:
    alice = await make_wallet(balance=500)
    hold = NewTransfer(
        id=f"trf_{uuid.uuid4().hex}",
        kind="withdrawal",
        status="pending",
        from_account=alice,
        to_account="settlement_EUR",
        amount=200,
        currency="EUR",
        memo=None,
        initiator_id=None,
    )
    second = NewTransfer(**{**{f: getattr(hold, f) for f in hold.__slots__}, "id": "trf_second"})
    async with pool.acquire() as connection:
        created = await commit_batch(connection, [hold, second])
        assert created.wallets[alice] == {
            **created.wallets[alice],
            "balance": 500,
            "pending_out": 400,
        }
        # A third hold beyond the available balance is refused by the database itself.
        third = NewTransfer(**{**{f: getattr(hold, f) for f in hold.__slots__}, "id": "trf_3"})
        refused = await commit_batch(connection, [third])
        assert isinstance(refused.outcomes[0], Rejected)
        settled = await commit_batch(
            connection,
            [Settlement(hold.id, "posted"), Settlement(second.id, "voided", "bank_refused")],
        )
        assert [type(o) for o in settled.outcomes] == [Applied, Applied]
        again = await commit_batch(connection, [Settlement(hold.id, "voided")])
        assert isinstance(again.outcomes[0], Duplicate)
    wallet = await pool.fetchrow("SELECT balance, pending_out FROM accounts WHERE id = $1", alice)
    assert (wallet["balance"], wallet["pending_out"]) == (300, 0)
    voided = await pool.fetchrow("SELECT status, reason FROM transfers WHERE id = $1", second.id)
    assert (voided["status"], voided["reason"]) == ("voided", "bank_refused")
    await assert_invariants(pool)


async def test_transfers_are_immutable(pool: asyncpg.Pool, make_wallet: MakeWallet) -> None:
    alice, bob = await make_wallet(balance=100), await make_wallet()
    transfer = p2p(alice, bob, 10)
    async with pool.acquire() as connection:
        await commit_batch(connection, [transfer])
        with pytest.raises(asyncpg.IntegrityConstraintViolationError):
            await connection.execute("UPDATE transfers SET amount = 1 WHERE id = $1", transfer.id)
        with pytest.raises(asyncpg.IntegrityConstraintViolationError):
            await connection.execute("DELETE FROM transfers WHERE id = $1", transfer.id)
        with pytest.raises(asyncpg.CheckViolationError):
            await connection.execute("UPDATE accounts SET balance = -1 WHERE id = $1", bob)


async def test_idempotency_record_is_written_with_the_transfer(
    pool: asyncpg.Pool, make_wallet: MakeWallet
) -> None:
    alice, bob = await make_wallet(balance=100), await make_wallet()
    user_id = await pool.fetchval("SELECT user_id FROM accounts WHERE id = $1", alice)
    record = IdempotencyRecord(user_id, "key-1", "hash-1")
    async with pool.acquire() as connection:
        await commit_batch(connection, [p2p(alice, bob, 10, idempotency=record)])
    stored = await pool.fetchrow("SELECT status_code, response FROM idempotency_keys")
    assert stored["status_code"] == 201
    assert stored["response"]["amount"] == 10 and stored["response"]["status"] == "posted"


async def test_concurrent_batches_never_overdraw(
    pool: asyncpg.Pool, make_wallet: MakeWallet
) -> None:
    """Two writers debiting one wallet at once (two actor copies in a failover): DB holds."""
    alice = await make_wallet(balance=1000)
    others = [await make_wallet() for _ in range(4)]

    async def writer(offset: int) -> int:
        applied = 0
        async with pool.acquire() as connection:
            for round_ in range(10):
                batch = [p2p(alice, others[(offset + i + round_) % 4], 30) for i in range(5)]
                result = await commit_batch(connection, batch)
                applied += sum(isinstance(o, Applied) for o in result.outcomes)
        return applied

    applied = sum(await asyncio.gather(*(writer(n) for n in range(4))))
    assert applied == 33  # floor(1000 / 30)
    assert (await balances(pool))[alice] == 1000 - 33 * 30
    await assert_invariants(pool)


async def test_killed_mid_batch_leaves_nothing_half_applied(
    pool: asyncpg.Pool, make_wallet: MakeWallet
) -> None:
    """The writer's connection dies after inserting transfers, before moving balances."""
    alice, bob = await make_wallet(balance=1000), await make_wallet()
    before = await balances(pool)
    writer = LedgerWriter(pool, writers=1)
    await writer.start()
    try:
        async with pool.acquire() as blocker, blocker.transaction():
            # Hold bob's row: the writer's batch stops at its account lock, mid-transaction.
            await blocker.execute("SELECT 1 FROM accounts WHERE id = $1 FOR NO KEY UPDATE", bob)
            futures = [writer.submit(p2p(alice, bob, 10)) for _ in range(20)]
            for _ in range(200):
                # Polled on another connection: pg_stat_activity is frozen within a transaction.
                victim = await pool.fetchval(
                    "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query LIKE '%FOR NO KEY UPDATE%' AND pid <> pg_backend_pid()"
                )
                if victim:
                    break
                await asyncio.sleep(0.01)
            assert victim, "the writer never reached its account lock"
            assert await blocker.fetchval("SELECT pg_terminate_backend($1)", victim)
        results = await asyncio.gather(*futures, return_exceptions=True)
        assert all(isinstance(r, LedgerUnavailable) for r in results), results
        assert await balances(pool) == before
        assert await pool.fetchval("SELECT count(*) FROM transfers WHERE kind = 'p2p'") == 0
        # The writer carries on with a fresh connection.
        outcome = await writer.submit(p2p(alice, bob, 10))
        assert isinstance(outcome, Applied)
    finally:
        await writer.stop()
    await assert_invariants(pool)
