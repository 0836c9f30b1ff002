"""Entities: activation on first message, passivation when idle, no lost message, no twins."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import pytest

from transakt.runtime import (
    Actor,
    ActorDeadError,
    ActorRef,
    ActorSystem,
    EntityRef,
    UnknownEntityKind,
    VirtualClock,
)

from .helpers import settle


class Account(Actor):
    """A per-key counter that tracks how many instances of its key are alive."""

    live: ClassVar[dict[str, int]] = {}
    peak: ClassVar[dict[str, int]] = {}
    stop_gate: ClassVar[asyncio.Event | None] = None

    def __init__(self, key: str) -> None:
        self.key = key
        self.balance = 0

    async def started(self) -> None:
        Account.live[self.key] = Account.live.get(self.key, 0) + 1
        Account.peak[self.key] = max(Account.peak.get(self.key, 0), Account.live[self.key])

    async def receive(self, message: Any) -> Any:
        if message == "whoami":
            return self.ref, self.key
        self.balance += message
        return self.balance

    async def stopped(self) -> None:
        if Account.stop_gate is not None:
            await Account.stop_gate.wait()  # a slow passivation, to race messages with it
        Account.live[self.key] -= 1


@pytest.fixture(autouse=True)
def reset_accounts() -> None:
    Account.live = {}
    Account.peak = {}
    Account.stop_gate = None


@pytest.fixture
async def bank(clock: VirtualClock) -> Any:
    async with ActorSystem(clock=clock) as system:
        system.register_entity(Account, idle_timeout=10.0)
        yield system


async def test_activate_on_first_message(bank: ActorSystem) -> None:
    ref = bank.entity(Account, "a1")
    assert isinstance(ref, EntityRef) and ref.name == "Account/a1" and ref.key == "a1"
    assert bank.active_entities(Account) == 0  # a ref alone activates nothing
    assert await ref.ask(5) == 5
    assert await bank.entity(Account, "a1").ask(2) == 7  # same instance through a new ref
    assert bank.entity(Account, "a1") == ref
    assert await bank.entity("Account", "a2").ask(1) == 1
    assert bank.active_entities(Account) == 2
    assert bank.metrics.activations == 2
    self_ref, key = await ref.ask("whoami")
    assert self_ref == ref and key == "a1"
    assert "Account/a1 mailbox=0" in repr(ref)


async def test_passivation_after_idle_then_reactivation(
    bank: ActorSystem, clock: VirtualClock
) -> None:
    ref = bank.entity(Account, "a1")
    assert await ref.ask(10) == 10
    await clock.advance(6.0)
    assert await ref.ask(1) == 11  # activity restarts the idle timer
    await clock.advance(9.0)
    assert bank.active_entities(Account) == 1
    await clock.advance(1.5)
    assert bank.active_entities(Account) == 0
    assert Account.live["a1"] == 0
    assert bank.metrics.passivations == 1
    assert "inactive" in repr(ref)
    assert await ref.ask(1) == 1  # a fresh instance: state is rebuilt from scratch
    assert bank.metrics.activations == 2
    assert Account.peak["a1"] == 1


async def test_message_racing_with_passivation_is_not_lost(
    bank: ActorSystem, clock: VirtualClock
) -> None:
    gate = Account.stop_gate = asyncio.Event()
    ref = bank.entity(Account, "a1")
    assert await ref.ask(3) == 3
    await clock.advance(11.0)  # passivation starts; stopped() is blocked on the gate
    assert Account.live["a1"] == 1
    racing = asyncio.ensure_future(ref.ask(4, timeout=None))
    await clock.advance(0)  # the loop runs until quiet; no time passes
    ref.tell(6)
    await clock.advance(0)
    assert not racing.done()
    assert Account.live["a1"] == 1  # no second instance while the first one is stopping
    gate.set()
    assert await racing == 4  # served by a fresh instance after stopped() completed
    assert await ref.ask(0) == 10  # the told message was not lost either
    assert Account.peak["a1"] == 1
    assert bank.active_entities(Account) == 1
    assert (bank.metrics.passivations, bank.metrics.activations) == (1, 2)


async def test_message_before_passivation_cancels_it(
    bank: ActorSystem, clock: VirtualClock
) -> None:
    ref = bank.entity(Account, "a1")
    await ref.ask(1)
    await clock.advance(9.9)
    assert await ref.ask(1) == 2
    await clock.advance(9.9)
    assert bank.metrics.passivations == 0
    assert await ref.ask(1) == 3


async def test_busy_entity_is_not_passivated(clock: VirtualClock) -> None:
    class Worker(Actor):
        def __init__(self, key: str) -> None:
            self.key = key

        async def receive(self, message: Any) -> Any:
            await message.wait()
            return "done"

    async with ActorSystem(clock=clock) as system:
        system.register_entity(Worker, idle_timeout=1.0)
        gate = asyncio.Event()
        reply = asyncio.ensure_future(system.entity(Worker, "w").ask(gate, timeout=None))
        await clock.advance(5.0)
        assert system.active_entities(Worker) == 1
        gate.set()
        assert await reply == "done"
        await clock.advance(1.1)
        assert system.active_entities(Worker) == 0


async def test_active_entity_gauges(bank: ActorSystem, clock: VirtualClock) -> None:
    for i in range(5):
        bank.entity(Account, f"k{i}").tell(1)
    await settle()
    assert bank.active_entities(Account) == 5
    assert bank.metrics.active_entities_by_kind == {"Account": 5}
    snapshot = bank.metrics.snapshot()
    assert snapshot["active_entities"] == 5
    assert snapshot["active_entities.Account"] == 5
    assert snapshot["active_actors"] == 5
    await clock.advance(11.0)
    assert bank.metrics.snapshot()["active_entities"] == 0
    assert bank.metrics.active_actors == 0


async def test_explicit_stop_passivates(bank: ActorSystem) -> None:
    ref = bank.entity(Account, "a1")
    await ref.ask(1)
    await ref.stop()
    assert bank.active_entities(Account) == 0
    await ref.stop()  # nothing active: no-op
    assert await ref.ask(1) == 1


async def test_custom_factory_and_kind_name(clock: VirtualClock) -> None:
    async with ActorSystem(clock=clock) as system:
        name = system.register_entity(
            Account, lambda key: Account(key.upper()), kind="wallet", idle_timeout=5.0
        )
        assert name == "wallet"
        ref = system.entity(Account, "w_42")
        assert ref.name == "wallet/w_42"
        assert (await ref.ask("whoami"))[1] == "W_42"
        with pytest.raises(ValueError):
            system.register_entity(Account, kind="wallet")


async def test_unknown_kind(bank: ActorSystem) -> None:
    with pytest.raises(UnknownEntityKind) as caught:
        bank.entity("Nope", "x")
    assert isinstance(caught.value, LookupError) and caught.value.kind == "Nope"
    with pytest.raises(UnknownEntityKind):
        bank.active_entities("Nope")


async def test_no_activation_during_shutdown(clock: VirtualClock) -> None:
    system = ActorSystem(clock=clock)
    system.register_entity(Account)
    ref = system.entity(Account, "x")
    await system.shutdown()
    with pytest.raises(ActorDeadError):
        ref.tell(1)


class FakeRemoteRef(ActorRef):
    """What a network transport would hand out: same interface, messages go elsewhere."""

    def __init__(self, kind: str, key: str) -> None:
        self._name = f"{kind}/{key}"
        self.sent: list[Any] = []

    @property
    def name(self) -> str:
        return self._name

    def tell(self, message: Any) -> None:
        self.sent.append(message)

    async def ask(self, message: Any, timeout: float | None = 5.0) -> Any:  # noqa: ASYNC109
        self.sent.append(message)
        return ("remote", message)

    async def stop(self) -> None:
        pass


class FakeTransport:
    """In-process test double: keys starting with ``remote-`` live on another node."""

    def __init__(self) -> None:
        self.started_with: ActorSystem | None = None
        self.closed = False
        self.left = False
        self.published: list[tuple[str, Any]] = []
        self.refs: dict[str, FakeRemoteRef] = {}

    async def start(self, system: ActorSystem) -> None:
        self.started_with = system

    async def leave(self) -> None:
        assert not self.closed
        self.left = True

    async def close(self) -> None:
        assert self.left  # leave() comes first: work goes elsewhere while the system stops
        self.closed = True

    def entity_ref(self, kind: str, key: str) -> ActorRef | None:
        if not key.startswith("remote-"):
            return None
        return self.refs.setdefault(key, FakeRemoteRef(kind, key))

    async def publish(self, topic: str, event: Any) -> None:
        self.published.append((topic, event))


async def test_transport_seam() -> None:
    transport = FakeTransport()
    async with ActorSystem(transport=transport) as system:
        assert transport.started_with is system
        system.register_entity(Account, kind="wallet")
        remote = system.entity(Account, "remote-1")
        assert isinstance(remote, FakeRemoteRef) and remote.name == "wallet/remote-1"
        assert await remote.ask(5) == ("remote", 5)
        local = system.entity(Account, "local-1")
        assert isinstance(local, EntityRef)
        assert await local.ask(5) == 5
        assert system.active_entities(Account) == 1
        # Unregistered kinds can still live elsewhere.
        assert isinstance(system.entity("Elsewhere", "remote-9"), FakeRemoteRef)
        seen: list[Any] = []
        system.events.subscribe("t", lambda topic, event: seen.append(event))
        system.events.publish("t", {"n": 1})
        system.events.publish_local("t", {"n": 2})  # what a transport does with remote events
        await system.events.drain()
        assert seen == [{"n": 1}, {"n": 2}]
        assert transport.published == [("t", {"n": 1})]
    assert transport.left and transport.closed
