"""Money invariants under concurrency and faults, through the real actors, writer and database.

Thousands of P2P transfers race among a few wallets, many of them overdraft attempts and some
replays; the client keeps its own books, and at the end the server's books must agree to the
cent: per currency everything sums to zero, no wallet is negative, and every acknowledged
transfer exists exactly once. Every count the tests assert on is one they can work out
themselves: a keyed request sent three times at once is one decision and two replays of it,
whichever attempt got there first.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest

from transakt.composition.node import Node, open_node
from transakt.config import ResolvedServices, Settings
from transakt.errors import InsufficientFunds
from transakt.models import Transfer
from transakt.services.wallets import IdempotencyKey, Replay, TransferRequest
from transakt.storage.audit import ledger_violations
from transakt.storage.errors import STORAGE_UNAVAILABLE
from transakt.storage.writer import LedgerUnavailable
from transakt.testing import fund_wallet


@dataclass(frozen=True, slots=True)
class Member:
    user_id: str
    wallet_id: str


@pytest.fixture
async def node(wallet_settings: Settings, services: ResolvedServices) -> AsyncIterator[Node]:
    """A wallet node of its own (its own actor system and writer) on the session database."""
    async with open_node(wallet_settings, services) as running:
        yield running


@pytest.fixture
def members(
    node: Node, open_bank_account: Callable[..., Awaitable[str]]
) -> Callable[[int, int], Awaitable[list[Member]]]:
    """Sign up ``count`` people with funded EUR wallets."""

    async def make(count: int, balance: int) -> list[Member]:
        people = []
        for index in range(count):
            name = f"Member {index}"
            account = await open_bank_account(name, "EUR")
            email = f"m{index}-{random.getrandbits(48):x}@example.test"
            signed_up = await node.accounts.signup(
                email, "correct horse battery", name, account, "test"
            )
            wallet = signed_up.wallets[0]
            await fund_wallet(node.pool, wallet.id, balance)
            people.append(Member(signed_up.user.id, wallet.id))
        return people

    return make


def refusal_body(error: InsufficientFunds) -> dict[str, Any]:
    """The body a refusal is kept under its Idempotency-Key with (the contract's error shape)."""
    return {"error": {"code": error.code, "message": error.message, **error.details}}


async def attempt(
    node: Node, user_id: str, request: TransferRequest, key: IdempotencyKey | None
) -> Transfer | Replay | InsufficientFunds:
    """One attempt at a payment, answered as the HTTP layer answers it (``answer_once``): a
    keyed request's refusal is kept under its key, and if an answer stood there first (another
    attempt's transfer or refusal), that answer is this attempt's, as a replay. So every
    attempt of one request gets the one answer the database kept, however they interleave:
    joined to the original in flight (the wallet actor's ``_joined``), finding its transfer
    committed (a Duplicate), or refused and finding the answer kept."""
    try:
        return await node.service.transfer(user_id, request, key)
    except InsufficientFunds as error:
        if key is None:
            return error
        first = await node.idempotency.record(user_id, key, 409, refusal_body(error))
        return error if first is None else first


async def assert_books_balance(pool: asyncpg.Pool, wallets: dict[str, int]) -> None:
    """Server books: sound by the audit, and equal to the client's books to the cent."""
    assert await ledger_violations(pool) == []
    rows = await pool.fetch(
        "SELECT id, balance FROM accounts WHERE id = ANY($1::text[])", list(wallets)
    )
    assert {row["id"]: row["balance"] for row in rows} == wallets


async def test_concurrent_transfers_keep_the_books(
    node: Node, members: Callable[..., Awaitable[list[Member]]]
) -> None:
    people = await members(5, 20_000)
    books = {person.wallet_id: 20_000 for person in people}
    rng = random.Random(7)
    requests = 3_000
    acknowledged: Counter[str] = Counter()
    refused = 0  # requests refused (each once, however many attempts it took)
    replays = 0  # replayed successes
    refusal_replays = 0
    keyed_acknowledged = keyed_refused = 0

    async def pay(index: int) -> None:
        nonlocal refused, replays, refusal_replays, keyed_acknowledged, keyed_refused
        payer, payee = rng.sample(people, 2)
        request = TransferRequest(
            payer.wallet_id, payee.wallet_id, None, rng.randint(1, 3_000), "EUR", None
        )
        key = IdempotencyKey(f"k-{index}", f"h-{index}") if index % 5 == 0 else None
        attempts = 3 if key is not None else 1  # idempotent ones are sent three times at once
        results = await asyncio.gather(
            *(attempt(node, payer.user_id, request, key) for _ in range(attempts)),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, InsufficientFunds):
                raise result
        # The attempts agree: exactly one of them was decided, the others replay that decision.
        decided = [result for result in results if not isinstance(result, Replay)]
        assert len(decided) == 1, f"one request, one decision: {results}"
        decision = decided[0]
        replayed = [result for result in results if isinstance(result, Replay)]
        assert len(replayed) == attempts - 1
        ids = set()
        if isinstance(decision, InsufficientFunds):
            # A real overdraft attempt: the wallet actor refused it (not the database, which
            # would mean its bound was wrong), saying what it had, and that was too little.
            available = decision.details.get("available")
            assert available is not None, f"refused by the database, not the actor: {decision}"
            assert 0 <= available < request.amount
            assert all((r.status, r.body) == (409, refusal_body(decision)) for r in replayed)
            refused += 1
            refusal_replays += len(replayed)
            keyed_refused += key is not None
        else:
            assert isinstance(decision, Transfer)
            assert (decision.from_wallet, decision.to_wallet, decision.amount) == (
                request.from_wallet,
                request.to_wallet,
                request.amount,
            )
            assert all(r.status == 201 and r.body["id"] == decision.id for r in replayed)
            ids.add(decision.id)
            replays += len(replayed)
            keyed_acknowledged += key is not None
        assert len(ids) <= 1, "one request, one transfer"
        for transfer_id in ids:
            acknowledged[transfer_id] += 1
            books[payer.wallet_id] -= request.amount
            books[payee.wallet_id] += request.amount

    semaphore = asyncio.Semaphore(200)

    async def bounded(index: int) -> None:
        async with semaphore:
            await pay(index)

    await asyncio.gather(*(bounded(index) for index in range(requests)))

    assert refused > 100, "the load must include real overdraft attempts"
    keyed = len(range(0, requests, 5))
    assert keyed_acknowledged + keyed_refused == keyed
    assert keyed_acknowledged > 100 and keyed_refused > 0, "both outcomes must be replayed"
    assert replays == 2 * keyed_acknowledged  # every retry of a success got that success
    assert refusal_replays == 2 * keyed_refused
    assert len(acknowledged) == requests - refused  # every request not refused moved money...
    assert set(acknowledged.values()) == {1}  # ...as a transfer of its own
    stored = await node.pool.fetch(
        "SELECT id FROM transfers WHERE kind = 'p2p' AND from_account = ANY($1::text[])",
        list(books),
    )
    assert Counter(row["id"] for row in stored) == Counter(set(acknowledged))
    await assert_books_balance(node.pool, books)


async def test_storage_faults_lose_nothing_and_apply_nothing_twice(
    node: Node, members: Callable[..., Awaitable[list[Member]]]
) -> None:
    """Kill the writer's connections mid-load; retries with the same key converge exactly."""
    people = await members(4, 50_000)
    rng = random.Random(11)
    requests = []
    for index in range(600):
        payer, payee = rng.sample(people, 2)
        requests.append(
            (
                payer,
                TransferRequest(
                    payer.wallet_id, payee.wallet_id, None, rng.randint(1, 200), "EUR", None
                ),
                IdempotencyKey(f"fault-{index}", f"h-{index}"),
            )
        )

    # Counted as the sends go, so that each kill can tell what was in flight around it.
    started = finished = retried = 0
    sending = asyncio.Event()  # set once the first transfer is on its way
    kills: list[tuple[int, int]] = []  # (connections terminated, transfers in flight throughout)

    async def killer() -> None:
        """Terminate the node's busy connections, five times, each time while transfers are in
        flight (from before the kill until after it), until the sends are all done."""
        await sending.wait()
        while len(kills) < 5 and finished < len(requests):
            await asyncio.sleep(0.05)
            started_before = started
            terminated = await node.pool.fetchval(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND state = 'active' AND application_name = ''"
            )
            # Started before the kill and not finished after it: in flight all through it.
            overlapping = started_before - finished
            if terminated and overlapping > 0:
                kills.append((terminated, overlapping))

    async def send(payer: Member, request: TransferRequest, key: IdempotencyKey) -> str:
        nonlocal started, finished, retried
        started += 1
        sending.set()
        try:
            for _attempt in range(50):
                try:
                    result = await node.service.transfer(payer.user_id, request, key)
                except (LedgerUnavailable, *STORAGE_UNAVAILABLE):
                    retried += 1
                    await asyncio.sleep(0.02)  # outcome unknown: retry with the same key
                    continue
                return result.body["id"] if isinstance(result, Replay) else result.id
            raise AssertionError("never converged")
        finally:
            finished += 1

    semaphore = asyncio.Semaphore(100)

    async def bounded(item: tuple[Member, TransferRequest, IdempotencyKey]) -> str:
        async with semaphore:
            return await send(*item)

    ids, _ = await asyncio.gather(asyncio.gather(*(bounded(item) for item in requests)), killer())
    # The faults were real: connections were terminated while transfers were in flight, and
    # transfers saw their outcome become unknown and were retried.
    assert kills, "no kill terminated a connection while transfers were in flight"
    assert sum(terminated for terminated, _ in kills) > 0
    assert all(overlapping > 0 for _, overlapping in kills)
    assert retried > 0, "no transfer ever saw a lost connection"
    assert len(set(ids)) == len(requests)
    books = {person.wallet_id: 50_000 for person in people}
    for _payer, request, _key in requests:
        books[request.from_wallet] -= request.amount
        assert request.to_wallet is not None
        books[request.to_wallet] += request.amount
    count = await node.pool.fetchval(
        "SELECT count(*) FROM transfers WHERE id = ANY($1::text[])", list(ids)
    )
    assert count == len(requests)
    await assert_books_balance(node.pool, books)


async def test_two_nodes_debiting_the_same_wallets_never_overdraw(
    wallet_settings: Settings,
    services: ResolvedServices,
    node: Node,
    members: Callable[..., Awaitable[list[Member]]],
) -> None:
    """Two copies of each wallet actor (two nodes, as in a failover): the database holds."""
    people = await members(3, 5_000)
    books = {person.wallet_id: 5_000 for person in people}
    rng = random.Random(5)
    async with open_node(wallet_settings, services) as other:
        nodes = (node, other)
        acknowledged = 0

        async def pay(index: int) -> None:
            nonlocal acknowledged
            payer, payee = rng.sample(people, 2)
            amount = rng.randint(50, 400)
            request = TransferRequest(payer.wallet_id, payee.wallet_id, None, amount, "EUR", None)
            try:
                await nodes[index % 2].service.transfer(payer.user_id, request, None)
            except InsufficientFunds:
                return
            acknowledged += 1
            books[payer.wallet_id] -= amount
            books[payee.wallet_id] += amount

        await asyncio.gather(*(pay(index) for index in range(600)))
    assert acknowledged > 50
    await assert_books_balance(node.pool, books)
