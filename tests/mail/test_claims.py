"""Mail claims against a real PostgreSQL: a claim lasts as long as the claiming session."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator

import asyncpg
import pytest
from httpkit import MakeUser
from live.conftest import wait_until

from mail.conftest import set_aside_pending_mail
from transakt.storage import mail as store

LEASE = 300.0  # the default: nothing below waits for it


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[list[asyncpg.Connection]]:
    """Two connections of their own: two workers' database sessions."""
    connections = [await asyncpg.connect(database_url) for _ in range(2)]
    yield connections
    for connection in connections:
        await connection.close()


async def _mails(pool: asyncpg.Pool, make_user: MakeUser, count: int) -> set[tuple[str, str]]:
    """``count`` pending mails to a new user, and nothing else pending; their keys."""
    person = await make_user(name="Claim Test")
    await set_aside_pending_mail(pool)
    prefix = f"claim_{os.urandom(6).hex()}"
    rows = [
        (
            f"{prefix}_{i}:posted",
            person.user_id,
            "deposited",
            person.email,
            person.name,
            None,
            json.dumps({"id": f"{prefix}_{i}", "amount": 100, "currency": "EUR"}),
        )
        for i in range(count)
    ]
    async with pool.acquire() as connection:
        await store.insert_deliveries(connection, rows)
    return {(row[0], person.user_id) for row in rows}


def _keys(mails: list[store.MailDelivery]) -> set[tuple[str, str]]:
    return {(mail.event_id, mail.recipient) for mail in mails}


async def _holds_claim_lock(pool: asyncpg.Pool, session: asyncpg.Connection) -> bool:
    held = await pool.fetchval(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
        "AND classid = $1 AND objid = $2 AND objsubid = 2",
        store.CLAIM_LOCK_CLASS,
        session.get_server_pid(),
    )
    return bool(held)


async def test_a_claim_lasts_exactly_as_long_as_the_claiming_session(
    wallet_pool: asyncpg.Pool, make_user: MakeUser, sessions: list[asyncpg.Connection]
) -> None:
    mine = await _mails(wallet_pool, make_user, 3)
    first, second = sessions

    claimed = await store.claim_due(first, 10, LEASE)
    assert _keys(claimed) == mine
    assert {mail.attempts for mail in claimed} == {1}
    owners = await wallet_pool.fetch(
        "SELECT DISTINCT claimed_by FROM mail_deliveries WHERE event_id = ANY($1::text[])",
        [event for event, _ in mine],
    )
    assert [row["claimed_by"] for row in owners] == [first.get_server_pid()]
    assert await _holds_claim_lock(wallet_pool, first)
    # Alive: however long it takes, nobody else gets these mails.
    assert await store.claim_due(second, 10, LEASE) == []

    await first.close()  # the worker's process died: PostgreSQL ends its session

    async def taken_over() -> bool:
        # The server notices the closed connection as it happens; poll a moment for it.
        taken = await store.claim_due(second, 10, LEASE)
        assert not taken or _keys(taken) == mine, "all of them or none"
        if taken:
            assert {mail.attempts for mail in taken} == {2}
        return bool(taken)

    await wait_until(taken_over, "the dead session's mails to be claimable", deadline=5.0)
    await store.release_claims(second)
    assert not await _holds_claim_lock(wallet_pool, second)


async def test_claiming_nothing_takes_no_lock_and_a_release_frees_what_was_not_marked(
    wallet_pool: asyncpg.Pool, make_user: MakeUser, sessions: list[asyncpg.Connection]
) -> None:
    first, second = sessions
    await set_aside_pending_mail(wallet_pool)
    assert await store.claim_due(first, 10, LEASE) == []
    assert not await _holds_claim_lock(wallet_pool, first)

    mine = await _mails(wallet_pool, make_user, 4)
    claimed = await store.claim_due(first, 10, LEASE)
    assert _keys(claimed) == mine
    sent, failed, retried, *untouched = claimed
    await store.mark_sent(first, sent)
    await store.mark_failed(first, failed, "refused for good")
    await store.mark_retry(first, [(retried, 0.0, "busy")])
    await store.release_claims(first)  # the last one neither marked nor retried
    assert not await _holds_claim_lock(wallet_pool, first)

    taken = await store.claim_due(second, 10, LEASE)
    assert _keys(taken) == _keys([retried, *untouched])
    rows = await wallet_pool.fetch(
        "SELECT event_id, status, claimed_by FROM mail_deliveries WHERE event_id = ANY($1::text[])",
        [event for event, _ in mine],
    )
    status = {row["event_id"]: (row["status"], row["claimed_by"]) for row in rows}
    assert status[sent.event_id] == ("sent", None)
    assert status[failed.event_id] == ("failed", None)
    assert status[untouched[0].event_id] == ("pending", second.get_server_pid())
    await store.release_claims(second)


async def test_a_claim_past_its_backstop_lease_is_no_longer_its_first_holders(
    wallet_pool: asyncpg.Pool, make_user: MakeUser, sessions: list[asyncpg.Connection]
) -> None:
    first, second = sessions
    mine = await _mails(wallet_pool, make_user, 2)
    claimed = await store.claim_due(first, 10, lease_seconds=0.2)
    assert _keys(claimed) == mine
    # Renewing in time keeps them, still this session's.
    assert await store.renew_claims(first, claimed, 0.2) == mine

    # Then the holder hangs with its session open: the backstop lease hands the mails on.
    taken: list[store.MailDelivery] = []

    async def taken_over() -> bool:
        taken.extend(await store.claim_due(second, 10, LEASE))
        return bool(taken)

    await wait_until(taken_over, "the lease to run out", deadline=5.0)
    assert _keys(taken) == mine
    # The first holder learns it lost them, and its late retry does not undo the new claim.
    assert await store.renew_claims(first, claimed, LEASE) == set()
    await store.mark_retry(first, [(claimed[0], 0.0, "late")])
    owner = await wallet_pool.fetchval(
        "SELECT claimed_by FROM mail_deliveries WHERE event_id = $1", claimed[0].event_id
    )
    assert owner == second.get_server_pid()
    await store.release_claims(first)
    await store.release_claims(second)
