"""Money invariants under concurrency and faults, through the real actors, writer and database.

Thousands of P2P transfers race among a few wallets, many of them overdraft attempts and some
replays; the client keeps its own books, and at the end the server's books must agree to the
cent: per currency everything sums to zero, no wallet is negative, and every acknowledged
transfer exists exactly once.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import asyncpg
import pytest

from transakt.config import Settings
from transakt.errors import InsufficientFunds
from transakt.models import Transfer
from transakt.node import Node, open_node
from transakt.services.wallets import IdempotencyKey, Replay, TransferRequest
from transakt.storage.audit import ledger_violations
from transakt.storage.embedded import ResolvedServices
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
    acknowledged: Counter[str] = Counter()
    refused = 0
    replays = 0

    async def pay(index: int) -> None:
        nonlocal refused, replays
        payer, payee = rng.sample(people, 2)
        request = TransferRequest(
            payer.wallet_id, payee.wallet_id, None, rng.randint(1, 3_000), "EUR", None
        )
        key = IdempotencyKey(f"k-{index}", f"h-{index}") if index % 5 == 0 else None
        attempts = 3 if key is not None else 1  # idempotent ones are sent three times at once
        results = await asyncio.gather(
            *(node.service.transfer(payer.user_id, request, key) for _ in range(attempts)),
            return_exceptions=True,
        )
        ids = set()
        for result in results:
            if isinstance(result, InsufficientFunds):
                refused += 1
                continue
            if isinstance(result, BaseException):
                raise result
            if isinstance(result, Replay):
                replays += 1
                ids.add(result.body["id"])
            else:
                assert isinstance(result, Transfer)
                ids.add(result.id)
        assert len(ids) <= 1, "one request, one transfer"
        for transfer_id in ids:
            acknowledged[transfer_id] += 1
            books[payer.wallet_id] -= request.amount
            books[payee.wallet_id] += request.amount

    semaphore = asyncio.Semaphore(200)

    async def bounded(index: int) -> None:
        async with semaphore:
            await pay(index)

    await asyncio.gather(*(bounded(index) for index in range(3_000)))

    assert refused > 100, "the load must include real overdraft attempts"
    assert replays > 0 or any(True for _ in acknowledged)
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

    async def killer() -> None:
        for _ in range(5):
            await asyncio.sleep(0.05)
            await node.pool.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND state = 'active' AND application_name = ''"
            )

    async def send(payer: Member, request: TransferRequest, key: IdempotencyKey) -> str:
        for _attempt in range(50):
            try:
                result = await node.service.transfer(payer.user_id, request, key)
            except (LedgerUnavailable, *STORAGE_UNAVAILABLE):
                await asyncio.sleep(0.02)  # outcome unknown: retry with the same key
                continue
            return result.body["id"] if isinstance(result, Replay) else result.id
        raise AssertionError("never converged")

    semaphore = asyncio.Semaphore(100)

    async def bounded(item: tuple[Member, TransferRequest, IdempotencyKey]) -> str:
        async with semaphore:
            return await send(*item)

    ids, _ = await asyncio.gather(asyncio.gather(*(bounded(item) for item in requests)), killer())
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
