"""The ledger's invariants, straight against PostgreSQL: what the database itself guarantees."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

import asyncpg
import pytest

from transakt.errors import CurrencyMismatch, InsufficientFunds, NotFound, ValidationFailed
from transakt.models import Transfer
from transakt.storage.audit import ledger_violations
from transakt.storage.ledger import commit_batch
from transakt.storage.records import (
    TRANSFER_COLUMNS,
    Applied,
    Duplicate,
    IdempotencyRecord,
    LedgerOperation,
    NewTransfer,
    Outcome,
    Rejected,
    Settlement,
    transfer_from_row,
)
from transakt.storage.writer import LedgerUnavailable, LedgerWriter

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
    assert await ledger_violations(pool) == []


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
    assert [row["topic"] for row in topics].count("balance.changed") == 0  # carried inside
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
                    # This database only: other sessions on the server may be waiting too.
                    "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query LIKE '%FOR NO KEY UPDATE%' AND pid <> pg_backend_pid() "
                    "AND datname = current_database()"
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


async def test_a_crashed_writer_loop_fails_its_batch_and_is_restarted(
    pool: asyncpg.Pool, make_wallet: MakeWallet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug in a writer loop: the batch it held fails as unavailable (its outcome unknown),
    the writer's supervisor restarts the loop, and the client's retry commits once."""
    alice, bob = await make_wallet(balance=1000), await make_wallet()
    writer = LedgerWriter(pool, writers=1)
    commit = writer._commit
    crashed = False

    async def commit_crashing_once(
        connection: asyncpg.pool.PoolConnectionProxy,
        batch: list[tuple[LedgerOperation, asyncio.Future[Outcome]]],
    ) -> bool:
        nonlocal crashed
        if not crashed:
            crashed = True
            raise RuntimeError("injected: a bug in the writer loop")
        return await commit(connection, batch)

    monkeypatch.setattr(writer, "_commit", commit_crashing_once)
    await writer.start()
    try:
        transfer = p2p(alice, bob, 10)
        with pytest.raises(LedgerUnavailable):
            await writer.submit(transfer)
        # Queued while the only loop waits to restart: the restarted loop commits it (and
        # its id is no longer held as in flight by the crashed batch).
        outcome = await writer.submit(transfer)
        assert isinstance(outcome, Applied)
        tasks = writer.tasks
        assert (tasks.crashes, tasks.restarts, tasks.failed, tasks.running) == (1, 1, 0, 1)
        assert writer.failures == 1 and writer.batches == 1
    finally:
        await writer.stop()
    assert writer.tasks.running == 0
    assert (await balances(pool))[bob] == 10
    await assert_invariants(pool)


async def committed_row(pool: asyncpg.Pool, transfer_id: str) -> Transfer:
    row = await pool.fetchrow(
        f"SELECT {TRANSFER_COLUMNS} FROM transfers WHERE id = $1", transfer_id
    )
    return transfer_from_row(row)


async def owner(pool: asyncpg.Pool, account: str) -> str | None:
    user_id: str | None = await pool.fetchval("SELECT user_id FROM accounts WHERE id = $1", account)
    return user_id


async def test_outcomes_are_the_committed_rows(pool: asyncpg.Pool, make_wallet: MakeWallet) -> None:
    """What commit_batch answers is exactly what the database holds, field for field."""
    alice, bob = await make_wallet(balance=1000), await make_wallet()
    user_id = await owner(pool, alice)
    assert user_id is not None
    transfer = NewTransfer(
        id=f"trf_{uuid.uuid4().hex}",
        kind="p2p",
        status="posted",
        from_account=alice,
        to_account=bob,
        amount=125,
        currency="EUR",
        memo="lunch ☕",
        initiator_id=user_id,
    )
    hold = NewTransfer(
        id=f"trf_{uuid.uuid4().hex}",
        kind="withdrawal",
        status="pending",
        from_account=alice,
        to_account="settlement_EUR",
        amount=50,
        currency="EUR",
        memo=None,
        initiator_id=user_id,
    )
    async with pool.acquire() as connection:
        created = await commit_batch(connection, [transfer, hold])
        settled = await commit_batch(connection, [Settlement(hold.id, "voided", "bank_refused")])
    for outcome in (*created.outcomes, *settled.outcomes):
        assert isinstance(outcome, Applied)
    first, second = created.outcomes
    assert isinstance(first, Applied) and isinstance(second, Applied)
    assert first.transfer == await committed_row(pool, transfer.id)
    voided = settled.outcomes[0]
    assert isinstance(voided, Applied)
    assert voided.transfer == await committed_row(pool, hold.id)
    assert voided.transfer.reason == "bank_refused" and voided.transfer.posted_at is None
    assert second.transfer.status == "pending" and second.transfer.posted_at is None


async def test_stored_idempotent_response_is_the_transfer_json(
    pool: asyncpg.Pool, make_wallet: MakeWallet
) -> None:
    alice, bob = await make_wallet(balance=1000), await make_wallet()
    user_id = await owner(pool, alice)
    assert user_id is not None
    posted = p2p(alice, bob, 10, idempotency=IdempotencyRecord(user_id, "key-p", "hash-p"))
    with_memo = NewTransfer(
        **{
            **{f: getattr(posted, f) for f in posted.__slots__},
            "id": f"trf_{uuid.uuid4().hex}",
            "memo": 'rent "May" \\ ünïcode',
            "idempotency": IdempotencyRecord(user_id, "key-m", "hash-m"),
        }
    )
    hold = NewTransfer(
        id=f"trf_{uuid.uuid4().hex}",
        kind="withdrawal",
        status="pending",
        from_account=alice,
        to_account="settlement_EUR",
        amount=70,
        currency="EUR",
        memo=None,
        initiator_id=user_id,
        idempotency=IdempotencyRecord(user_id, "key-h", "hash-h"),
        response_status=202,
    )
    plain = p2p(alice, bob, 5)  # no idempotency record: nothing stored for it
    async with pool.acquire() as connection:
        result = await commit_batch(connection, [posted, with_memo, hold, plain])
        # A duplicate carries no new response: the first one stays.
        again = await commit_batch(connection, [posted])
    assert isinstance(again.outcomes[0], Duplicate)
    stored = {
        row["key"]: row
        for row in await pool.fetch(
            "SELECT key, request_hash, status_code, response FROM idempotency_keys "
            "WHERE user_id = $1",
            user_id,
        )
    }
    assert set(stored) == {"key-p", "key-m", "key-h"}
    for key, operation, status_code in (
        ("key-p", posted, 201),
        ("key-m", with_memo, 201),
        ("key-h", hold, 202),
    ):
        row = await committed_row(pool, operation.id)
        assert stored[key]["response"] == row.to_json()
        assert stored[key]["status_code"] == status_code
        assert stored[key]["request_hash"] == f"hash-{key[-1]}"
    outcome = result.outcomes[0]
    assert isinstance(outcome, Applied)
    assert stored["key-p"]["response"] == outcome.transfer.to_json()
    assert "posted_at" in stored["key-p"]["response"]
    assert "posted_at" not in stored["key-h"]["response"]
    assert stored["key-m"]["response"]["memo"] == 'rent "May" \\ ünïcode'


async def test_outbox_payloads_have_the_documented_shape(
    pool: asyncpg.Pool, make_wallet: MakeWallet
) -> None:
    alice, bob = await make_wallet(balance=1000), await make_wallet()
    alice_user, bob_user = await owner(pool, alice), await owner(pool, bob)
    await pool.execute("DELETE FROM outbox")  # the funding's events
    transfer = p2p(alice, bob, 300)
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
    async with pool.acquire() as connection:
        first = await commit_batch(connection, [transfer, hold])
        second = await commit_batch(connection, [Settlement(hold.id, "posted")])
    events = await pool.fetch("SELECT event_id, topic, payload FROM outbox ORDER BY id")
    transfer_events = {row["event_id"]: row for row in events}
    assert set(transfer_events) == {
        f"{transfer.id}:posted",
        f"{hold.id}:pending",
        f"{hold.id}:posted",
    }
    posted = transfer_events[f"{transfer.id}:posted"]
    assert posted["topic"] == "transfer.posted"
    # The wallets as the batch left them, each as the live feed shows it.
    moved = {
        w: {**s, "available": s["balance"] - s["pending_out"]} for w, s in first.wallets.items()
    }
    assert posted["payload"] == {
        "transfer": (await committed_row(pool, transfer.id)).to_json(),
        "from_user": alice_user,
        "to_user": bob_user,
        "wallets": [moved[alice], moved[bob]],
    }
    pending = transfer_events[f"{hold.id}:pending"]
    assert pending["topic"] == "transfer.pending"
    created_hold = first.outcomes[1]
    assert isinstance(created_hold, Applied)
    assert pending["payload"] == {
        "transfer": created_hold.transfer.to_json(),
        "from_user": alice_user,
        "to_user": None,  # the settlement account has no owner, and is no wallet
        "wallets": [moved[alice]],
    }
    settled_hold = transfer_events[f"{hold.id}:posted"]
    assert settled_hold["topic"] == "transfer.posted"
    assert settled_hold["payload"]["transfer"] == (await committed_row(pool, hold.id)).to_json()

    assert settled_hold["payload"]["wallets"] == [
        {**second.wallets[alice], "available": second.wallets[alice]["balance"]}
    ]
    assert set(first.wallets) == {alice, bob} and set(second.wallets) == {alice}
    assert first.wallets[alice] == {
        "id": alice,
        "user_id": alice_user,
        "currency": "EUR",
        "balance": 700,
        "pending_in": 0,
        "pending_out": 200,
    }
    assert second.wallets[alice]["balance"] == 500
    assert second.wallets[alice]["pending_out"] == 0
    await assert_invariants(pool)


async def test_create_and_settle_in_one_batch(pool: asyncpg.Pool, make_wallet: MakeWallet) -> None:
    """Settlements see the holds their batch creates; only the first settlement of an id counts."""
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
    batch = [
        Settlement(hold.id, "posted"),  # listed before the hold, applied after it (see below)
        hold,
        Settlement(hold.id, "voided", "first"),
        Settlement(hold.id, "posted"),  # repeated within the batch: a duplicate
    ]
    async with pool.acquire() as connection:
        result = await commit_batch(connection, batch)
    kinds = [type(outcome) for outcome in result.outcomes]
    # Settlements apply after the batch's inserts: the first settlement of the id wins.
    assert kinds == [Applied, Applied, Duplicate, Duplicate]
    settled = result.outcomes[0]
    assert isinstance(settled, Applied) and settled.transfer.status == "posted"
    assert settled.transfer == await committed_row(pool, hold.id)
    assert result.wallets[alice]["balance"] == 300
    assert result.wallets[alice]["pending_out"] == 0
    events = await pool.fetch("SELECT event_id FROM outbox WHERE event_id LIKE $1", f"{hold.id}:%")
    assert {row["event_id"] for row in events} == {f"{hold.id}:pending", f"{hold.id}:posted"}
    await assert_invariants(pool)


async def test_offsetting_transfers_still_name_their_users(
    pool: asyncpg.Pool, make_wallet: MakeWallet
) -> None:
    """Two transfers that cancel out move no balance, yet their events name both users."""
    alice, bob = await make_wallet(balance=100), await make_wallet(balance=100)
    there, back = p2p(alice, bob, 40), p2p(bob, alice, 40)
    async with pool.acquire() as connection:
        result = await commit_batch(connection, [there, back])
    assert [type(outcome) for outcome in result.outcomes] == [Applied, Applied]
    assert result.wallets == {}
    row = await pool.fetchrow("SELECT payload FROM outbox WHERE event_id = $1", f"{back.id}:posted")
    assert row["payload"]["from_user"] == await owner(pool, bob)
    assert row["payload"]["to_user"] == await owner(pool, alice)
    assert row["payload"]["wallets"] == []  # neither balance moved: nothing to update
    await assert_invariants(pool)


async def test_a_refused_batch_inside_a_transaction_leaves_it_usable(
    pool: asyncpg.Pool, make_wallet: MakeWallet
) -> None:
    alice, bob = await make_wallet(balance=100), await make_wallet()
    async with pool.acquire() as connection, connection.transaction():
        result = await commit_batch(connection, [p2p(alice, bob, 60), p2p(alice, bob, 60)])
        assert [type(outcome) for outcome in result.outcomes] == [Applied, Rejected]
        assert await connection.fetchval("SELECT balance FROM accounts WHERE id = $1", bob) == 60
    assert (await balances(pool))[bob] == 60
    await assert_invariants(pool)


async def test_refusals_map_to_domain_errors(pool: asyncpg.Pool, make_wallet: MakeWallet) -> None:
    alice, bob = await make_wallet(balance=100), await make_wallet()
    batch = [
        p2p(alice, bob, 10),
        p2p(alice, "wal_missing", 10),
        p2p(alice, alice, 10),
        p2p(alice, bob, 1000),
    ]
    async with pool.acquire() as connection:
        result = await commit_batch(connection, batch)
    errors = [getattr(outcome, "error", None) for outcome in result.outcomes]
    assert isinstance(result.outcomes[0], Applied)
    assert isinstance(errors[1], NotFound | CurrencyMismatch)
    assert isinstance(errors[2], ValidationFailed)
    assert isinstance(errors[3], InsufficientFunds)
    assert (await balances(pool))[bob] == 10
    await assert_invariants(pool)


async def test_event_json_matches_every_transfer_shape(
    pool: asyncpg.Pool, make_wallet: MakeWallet
) -> None:
    """Posted, pending, voided with a reason, posted with a reason: SQL JSON == to_json()."""
    alice, bob = await make_wallet(balance=1000), await make_wallet()
    user_id = await owner(pool, alice)

    def hold(amount: int) -> NewTransfer:
        return NewTransfer(
            id=f"trf_{uuid.uuid4().hex}",
            kind="withdrawal",
            status="pending",
            from_account=alice,
            to_account="settlement_EUR",
            amount=amount,
            currency="EUR",
            memo="cash out",
            initiator_id=user_id,
        )

    holds = [hold(10), hold(20), hold(30)]
    async with pool.acquire() as connection:
        plain = p2p(alice, bob, 5)
        with_memo = NewTransfer(
            **{**{f: getattr(plain, f) for f in plain.__slots__}, "memo": "x" * 500}
        )
        first = await commit_batch(connection, [with_memo, *holds])
        second = await commit_batch(
            connection,
            [
                Settlement(holds[0].id, "voided", "bank_refused"),
                Settlement(holds[1].id, "posted", "late confirmation"),
                Settlement(holds[2].id, "posted"),
            ],
        )
    transfers = []
    for outcome in (*first.outcomes, *second.outcomes):
        assert isinstance(outcome, Applied)
        transfers.append(outcome.transfer)
    rows = await pool.fetch(
        "SELECT event_id, payload FROM outbox WHERE topic LIKE 'transfer.%' "
        "AND payload->'transfer'->>'kind' <> 'deposit'"
    )
    payloads = {row["event_id"]: row["payload"]["transfer"] for row in rows}
    assert payloads == {f"{t.id}:{t.status}": t.to_json() for t in transfers}
    assert payloads[f"{holds[1].id}:posted"]["reason"] == "late confirmation"
    assert "posted_at" not in payloads[f"{holds[0].id}:voided"]


async def test_the_audit_catches_a_balance_changed_behind_the_ledgers_back(
    pool: asyncpg.Pool, make_wallet: MakeWallet
) -> None:
    alice = await make_wallet(balance=100)
    assert await ledger_violations(pool) == []
    await pool.execute("UPDATE accounts SET balance = balance + 1 WHERE id = $1", alice)
    try:
        problems = await ledger_violations(pool)
    finally:  # the session database is shared: leave the books as they were
        await pool.execute("UPDATE accounts SET balance = balance - 1 WHERE id = $1", alice)
    assert any("sum to zero" in line and "EUR sums to 1" in line for line in problems), problems
    assert any(alice in line and "transfers give 100/0/0" in line for line in problems), problems
    assert await ledger_violations(pool) == []


async def test_replays_in_opposite_orders_on_two_writers_never_deadlock(
    pool: asyncpg.Pool, make_wallet: MakeWallet
) -> None:
    """Concurrent replays split across two writer loops: each id applies once, no deadlock."""
    alice, bob = await make_wallet(balance=1_000_000), await make_wallet()
    # Batches of six: each loop takes one copy of the same six ids, in opposite orders.
    writer = LedgerWriter(pool, writers=2, batch_max=6)
    await writer.start()
    try:
        for round_ in range(30):
            transfers = [p2p(alice, bob, 1, id=f"trf_r{round_}_{n}") for n in range(6)]
            futures = [writer.submit(t) for t in (*transfers, *transfers[::-1])]
            outcomes = await asyncio.gather(*futures)  # a deadlock would raise here
            applied = [o.transfer.id for o in outcomes if isinstance(o, Applied)]
            assert sorted(applied) == sorted(t.id for t in transfers)
    finally:
        await writer.stop()
    assert (await balances(pool))[bob] == 30 * 6
    await assert_invariants(pool)


async def test_replays_in_opposite_orders_on_two_nodes_never_deadlock(
    pool: asyncpg.Pool, make_wallet: MakeWallet
) -> None:
    """Two nodes (no shared writer to keep their batches apart) commit the same new ids at
    once, in opposite orders and among different accounts: each id applies once, and neither
    batch is aborted as a deadlock."""
    wallets = [await make_wallet(balance=1_000_000) for _ in range(4)]
    for round_ in range(20):
        transfers = [
            p2p(wallets[n % 4], wallets[(n + 1) % 4], 1, id=f"trf_n{round_}_{n}") for n in range(6)
        ]
        async with pool.acquire() as first, pool.acquire() as second:
            results = await asyncio.gather(
                commit_batch(first, transfers), commit_batch(second, transfers[::-1])
            )  # a deadlock would raise here
        applied = [
            o.transfer.id for result in results for o in result.outcomes if isinstance(o, Applied)
        ]
        assert sorted(applied) == sorted(t.id for t in transfers)
    # Each round moves one unit w0 -> w1 twice, w1 -> w2 twice, w2 -> w3, w3 -> w0: applied once.
    after = await balances(pool)
    assert [after[w] - 1_000_000 for w in wallets] == [-20, 0, 20, 0]
    await assert_invariants(pool)
