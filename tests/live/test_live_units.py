"""The live hub without sockets: routing, snapshots, replays, slow clients."""

from __future__ import annotations

import json

import pytest

from transakt.errors import RateLimited
from transakt.events.live import CLOSE_TOO_SLOW, LiveHub, TransactionSnapshot
from transakt.runtime import EventBus
from transakt.storage.outbox import OutboxEvent

EVERYTHING = TransactionSnapshot(1, 1, frozenset())  # shows no transaction after xid 1


def balance(event_id: str, user: str, wallet: str, amount: int, xid: int = 100) -> OutboxEvent:
    wallet_state = {
        "id": wallet, "user_id": user, "currency": "EUR", "balance": amount,
        "pending_in": 0, "pending_out": 0, "available": amount,
    }  # fmt: skip
    return OutboxEvent(1, event_id, "balance.changed", {"wallet": wallet_state}, xid)


def transfer(event_id: str, payer: str | None, payee: str | None, xid: int = 100) -> OutboxEvent:
    payload = {"transfer": {"id": event_id}, "from_user": payer, "to_user": payee}
    return OutboxEvent(1, event_id, "transfer.posted", payload, xid)


def publish(bus: EventBus, event: OutboxEvent) -> None:
    bus.publish(event.topic, event)


async def test_events_reach_only_the_owners_of_the_wallets_they_concern() -> None:
    bus = EventBus()
    hub = LiveHub(bus)
    alice, bob, carol = hub.connect("u_a"), hub.connect("u_b"), hub.connect("u_c")
    for connection in (alice, bob, carol):
        connection.begin(EVERYTHING, [])
    publish(bus, balance("b1", "u_a", "w_a", 5))
    publish(bus, transfer("t1", "u_a", "u_b"))
    publish(bus, transfer("t2", None, "u_b"))  # a deposit: the settlement side has no user
    assert [json.loads(m)["type"] for m in await alice.take()] == ["balance", "transfer"]
    assert [json.loads(m)["transfer"]["id"] for m in await bob.take()] == ["t1", "t2"]
    assert carol.queued == 0
    # The wallet's owner id stays on the server: messages carry the contract's fields only.
    hub.connect("u_a").begin(EVERYTHING, [])
    publish(bus, balance("b2", "u_a", "w_a", 6))
    assert "user_id" not in (await alice.take())[0]


async def test_a_replayed_event_is_sent_once() -> None:
    bus = EventBus()
    hub = LiveHub(bus)
    alice = hub.connect("u_a")
    alice.begin(EVERYTHING, [])
    event = transfer("t1", "u_a", "u_b")
    publish(bus, event)
    publish(bus, event)
    assert len(await alice.take()) == 1 and hub.replays == 1


async def test_the_snapshot_hides_what_it_already_shows_and_keeps_what_is_newer() -> None:
    bus = EventBus()
    hub = LiveHub(bus)
    alice = hub.connect("u_a")
    # Arrive before the snapshot is read: held back until it is known.
    publish(bus, balance("old", "u_a", "w_a", 1, xid=90))  # committed before the snapshot
    publish(bus, balance("running", "u_a", "w_a", 2, xid=105))  # in progress at the snapshot
    publish(bus, balance("new", "u_a", "w_a", 3, xid=120))  # began after the snapshot
    snapshot = TransactionSnapshot.parse("100:110:105,107")
    assert snapshot.shows(90) and snapshot.shows(106) and not snapshot.shows(105)
    alice.begin(snapshot, ['{"type":"balance","wallet":{"balance":"snapshot"}}'])
    publish(bus, balance("late-old", "u_a", "w_a", 0, xid=99))  # delivered late, already shown
    amounts = [json.loads(m)["wallet"]["balance"] for m in await alice.take()]
    assert amounts == ["snapshot", 2, 3]


async def test_a_client_that_does_not_read_is_dropped_and_a_burst_is_not_fatal() -> None:
    bus = EventBus()
    hub = LiveHub(bus, queue_size=4)
    reader = hub.connect("u_a")
    reader.begin(EVERYTHING, [])
    # A burst while the writer is idle: more than the limit, but the writer takes it all.
    for index in range(20):
        publish(bus, transfer(f"burst{index}", "u_a", None))
    assert len(await reader.take()) == 20 and not reader.dropped.is_set()
    # Now the writer is "sending" (it took messages and has not asked again): the limit holds.
    for index in range(5):
        publish(bus, transfer(f"stuck{index}", "u_a", None))
    assert reader.dropped.is_set() and reader.close_code == CLOSE_TOO_SLOW
    hub.disconnect(reader)
    assert hub.dropped_slow == 1 and hub.connections == 0


async def test_a_transfer_event_brings_each_party_its_moved_wallet() -> None:
    bus = EventBus()
    hub = LiveHub(bus)
    alice, bob = hub.connect("u_a"), hub.connect("u_b")
    for connection in (alice, bob):
        connection.begin(EVERYTHING, [])
    wallets = [
        {"id": "w_a", "user_id": "u_a", "currency": "EUR", "balance": 70,
         "pending_in": 0, "pending_out": 0, "available": 70},
        {"id": "w_b", "user_id": "u_b", "currency": "EUR", "balance": 30,
         "pending_in": 0, "pending_out": 0, "available": 30},
    ]  # fmt: skip
    payload = {"transfer": {"id": "t1"}, "from_user": "u_a", "to_user": "u_b", "wallets": wallets}
    publish(bus, OutboxEvent(1, "t1:posted", "transfer.posted", payload, 100))
    for connection, wallet, balance_ in ((alice, "w_a", 70), (bob, "w_b", 30)):
        messages = [json.loads(m) for m in await connection.take()]
        assert [m["type"] for m in messages] == ["transfer", "balance"]
        assert messages[1]["wallet"]["id"] == wallet
        assert messages[1]["wallet"]["balance"] == balance_
        assert "user_id" not in messages[1]["wallet"]


def test_a_user_may_hold_only_so_many_connections() -> None:
    hub = LiveHub(EventBus(), max_per_user=2)
    first, _second = hub.connect("u_a"), hub.connect("u_a")
    with pytest.raises(RateLimited) as refused:
        hub.connect("u_a")
    assert refused.value.details == {"limit": 2}
    assert hub.refused == 1
    hub.connect("u_b")  # others are not affected
    hub.disconnect(first)
    assert hub.connections_of("u_a") == 1
    hub.connect("u_a")  # a closed one frees its place
    assert hub.connections == 3


def test_the_hub_listens_to_the_bus_only_while_a_connection_is_open() -> None:
    bus = EventBus()
    hub = LiveHub(bus)
    assert not bus.has_subscribers()  # nobody connected: the relay need not read anything
    first, second = hub.connect("u_a"), hub.connect("u_b")
    assert bus.has_subscribers()
    hub.disconnect(first)
    assert bus.has_subscribers()  # u_b is still connected
    hub.disconnect(second)
    assert not bus.has_subscribers()
    hub.connect("u_a")
    assert bus.has_subscribers()
    hub.close()
    assert not bus.has_subscribers()
    hub.connect("u_a")  # a closed hub never listens again
    assert not bus.has_subscribers()
