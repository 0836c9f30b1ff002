"""Three wallet node processes sharing the wallets over the local RabbitMQ and PostgreSQL.

Each test ends with the ledger's audit (per currency all balances sum to zero, no wallet below
zero, every balance equal to its transfers) and checks that every payment a node acknowledged
exists exactly once.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections import defaultdict

import aiohttp
import asyncpg
import pytest
from live.conftest import SmtpServer, smtp
from waits import wait_until

from cluster.brokerkit import restart_broker
from cluster.nodekit import (
    SHARDS,
    Cluster,
    NodeProcess,
    Person,
    balanced,
    decided_by_shard,
    pay,
    shards_owned,
)
from transakt.rabbitmq import shard_of
from transakt.storage.audit import ledger_violations

pytestmark = pytest.mark.slow
__all__ = ["smtp"]  # the live suite's SMTP server fixture


async def audit(cluster: Cluster, acknowledged: list[str]) -> None:
    """The books balance, and each acknowledged transfer is there exactly once."""
    pool = await asyncpg.create_pool(cluster.database_url, min_size=1, max_size=2)
    try:
        assert await ledger_violations(pool) == []
        counted = await pool.fetch(
            "SELECT id, count(*) AS n FROM transfers WHERE id = ANY($1::text[]) GROUP BY id",
            acknowledged,
        )
        assert len(counted) == len(set(acknowledged)) and all(row["n"] == 1 for row in counted)
        assert len(acknowledged) == len(set(acknowledged))
    finally:
        await pool.close()


async def load(
    nodes: list[NodeProcess],
    people: list[Person],
    count: int,
    concurrency: int = 24,
    *,
    stop: asyncio.Event | None = None,
) -> tuple[list[str], dict[int, int]]:
    """``count`` payments of 1 between random people, sent round-robin through ``nodes`` (a
    node that is dead answers nothing). Returns the acknowledged transfer ids and the statuses."""
    rng = random.Random(7)
    turn = itertools.count()
    acknowledged: list[str] = []
    statuses: dict[int, int] = defaultdict(int)
    remaining = [count]

    async def client(session: aiohttp.ClientSession) -> None:
        while remaining[0] > 0 and not (stop is not None and stop.is_set()):
            remaining[0] -= 1
            payer, payee = rng.sample(people, 2)
            node = nodes[next(turn) % len(nodes)]
            status, body = await pay(session, node, payer, payee, 1)
            statuses[status] += 1
            if status == 201:
                acknowledged.append(body["id"])

    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
    return acknowledged, dict(statuses)


async def test_each_wallet_is_decided_on_one_node(cluster: Cluster) -> None:
    nodes = await cluster.start(3)
    people = await cluster.people(40, 10_000)
    # The first node to subscribe owns every shard; the owners then even out by themselves.
    await wait_until(lambda: balanced(nodes), "the shards to spread over the nodes")
    owned = await shards_owned(nodes)
    assert all(count >= 2 for count in owned.values()), owned
    before = await decided_by_shard(nodes)
    acknowledged, statuses = await load(nodes, people, 600)
    assert statuses == {201: 600}
    assert await shards_owned(nodes) == owned  # no hand-over during the load
    # Per shard, one node decided every debit (its wallets' actors live there only).
    deciders: dict[str, list[str]] = defaultdict(list)
    for (series, node_id), value in (await decided_by_shard(nodes)).items():
        if value > before.get((series, node_id), 0):
            deciders[series].append(node_id)
    shards = {
        f'transakt_cluster_entity_messages_total{{shard="{shard_of(p.wallet_id, SHARDS)}"}}'
        for p in people
    }
    assert set(deciders) == shards and all(len(found) == 1 for found in deciders.values())
    # Two in three payments entered a node that does not own the payer's shard.
    asked = [(await node.metrics()).get("transakt_cluster_asks_sent_total", 0) for node in nodes]
    assert sum(asked) > 200
    await audit(cluster, acknowledged)


async def test_a_killed_node_hands_its_shards_over(cluster: Cluster) -> None:
    nodes = await cluster.start(3)
    people = await cluster.people(40, 10_000)
    victim = nodes[2]
    await wait_until(lambda: balanced(nodes), "the shards to spread over the nodes")
    assert await _owns_some(victim)
    stop = asyncio.Event()
    running = asyncio.ensure_future(load(nodes, people, 100_000, stop=stop))
    await asyncio.sleep(1.0)  # mid-load
    await victim.kill()
    killed_at = time.monotonic()
    survivors = nodes[:2]

    async def taken_over() -> bool:
        return sum((await shards_owned(survivors)).values()) == SHARDS

    await wait_until(taken_over, "the survivors to own every shard", deadline=15)
    handover = time.monotonic() - killed_at
    assert handover < 5.0, f"the hand-over took {handover:.1f}s"
    # The survivors keep answering every payment sent to them.
    await asyncio.sleep(1.0)
    stop.set()
    acknowledged, statuses = await running
    after, after_statuses = await load(survivors, people, 200)
    assert after_statuses == {201: 200}
    assert statuses.get(201, 0) > 100
    assert set(statuses) <= {201, 0, 503}, statuses  # 0: the dead node's own clients
    await audit(cluster, acknowledged + after)


async def _owns_some(node: NodeProcess) -> bool:
    return (await shards_owned([node])).get(node.node_id, 0) > 0


async def test_the_broker_restarting_mid_load(cluster: Cluster) -> None:
    nodes = await cluster.start(3)
    people = await cluster.people(40, 10_000)
    stop = asyncio.Event()
    running = asyncio.ensure_future(load(nodes, people, 100_000, stop=stop))
    await asyncio.sleep(1.0)
    await restart_broker()

    async def serving() -> bool:
        _ids, statuses = await load(nodes, people, 30, concurrency=6)
        return statuses == {201: 30}

    # No one restarts a node: each reconnects by itself, and payments flow through all three.
    await wait_until(serving, "every node to serve again", deadline=30)
    stop.set()
    acknowledged, statuses = await running
    # Refusals while the broker was away are 503s (retry), never wrong answers.
    assert set(statuses) <= {201, 503}, statuses
    after, after_statuses = await load(nodes, people, 150)
    assert after_statuses == {201: 150}

    # The event stream is back too: every subscriber reconnected (their live clients were told
    # to reconnect), and a websocket on one node hears a payment made on another.
    async def resubscribed() -> bool:
        metrics = [await node.metrics() for node in nodes]
        return all(m.get("transakt_events_subscriber_reconnects_total", 0) >= 1 for m in metrics)

    await wait_until(resubscribed, "every event subscriber to reconnect", deadline=30)
    paid = await _heard_across(nodes[0], nodes[2], people[0], people[1])
    await audit(cluster, [*acknowledged, *after, paid])


async def _heard_across(
    listener: NodeProcess, entry: NodeProcess, payer: Person, payee: Person
) -> str:
    """Pay ``payee`` through ``entry`` while ``payee`` watches the live feed on ``listener``;
    the transfer id, once the feed showed it."""
    url = f"{listener.url}/api/v1/live?token={payee.token}"
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as websocket:
        first = await asyncio.wait_for(websocket.receive_json(), 10)
        assert first["type"] == "balance"
        start = first["wallet"]["balance"]
        status, body = await pay(session, entry, payer, payee, 7)
        assert status == 201, body
        seen: list[dict[str, object]] = []
        while not any(
            m.get("type") == "balance" and m["wallet"]["balance"] == start + 7  # type: ignore[index]
            for m in seen
        ):
            seen.append(await asyncio.wait_for(websocket.receive_json(), 10))
        assert any(
            m.get("type") == "transfer" and m["transfer"]["id"] == body["id"]  # type: ignore[index]
            for m in seen
        )
        return str(body["id"])


async def test_a_websocket_on_one_node_hears_a_payment_made_through_another(
    cluster: Cluster,
) -> None:
    node_a, _node_b, node_c = await cluster.start(3)
    payer, payee = await cluster.people(2, 1_000)
    paid = await _heard_across(node_a, node_c, payer, payee)
    await audit(cluster, [paid])


async def test_three_nodes_and_two_workers_send_each_mail_once(
    cluster: Cluster, smtp: SmtpServer
) -> None:
    mail = {"mail_in_process": "true", "smtp_host": "127.0.0.1", "smtp_port": str(smtp.port)}
    nodes = await cluster.start(3, **mail)
    await cluster.start_workers(2, **mail)
    people = await cluster.people(12, 10_000)
    acknowledged, statuses = await load(nodes, people, 40, concurrency=8)
    assert statuses == {201: 40}
    # One "sent" mail to the payer and one "received" to the payee for every payment, and
    # the "deposited" mail of each person's opening deposit.
    expected = 2 * 40 + len(people)
    messages = await smtp.catcher.wait_for(
        lambda got: len(got) >= expected, "a mail to each side of every payment"
    )
    await cluster.stop()  # nobody left to send a late duplicate
    ids = [message["Message-ID"] for message in smtp.catcher.snapshot()]
    assert len(messages) >= expected and len(ids) == len(set(ids)) == expected
    await audit(cluster, acknowledged)
