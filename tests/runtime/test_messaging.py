"""tell/ask, ordering, one-at-a-time processing, timeouts, bounded mailboxes, Deferred replies."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from transakt.runtime import (
    Actor,
    ActorDeadError,
    ActorNameTaken,
    ActorRef,
    ActorStopped,
    ActorSystem,
    ActorSystemError,
    AskTimeout,
    Deferred,
    LocalActorRef,
    MailboxFull,
    RuntimeFailure,
    VirtualClock,
)

from .helpers import Boom, Recorder, settle


async def test_tell_and_ask(system: ActorSystem) -> None:
    log: list[Any] = []
    ref = system.spawn(lambda: Recorder(log), name="rec")
    ref.tell("a")
    assert await ref.ask("b") == 2
    assert log == ["a", "b"]
    assert ref.name == "rec"
    assert isinstance(ref, LocalActorRef)
    assert system.actor("rec") == ref


async def test_messages_sent_before_started_wait() -> None:
    order: list[str] = []
    gate = asyncio.Event()
    entered = asyncio.Event()

    class Slow(Actor):
        async def started(self) -> None:
            entered.set()
            await gate.wait()
            order.append("started")

        async def receive(self, message: Any) -> Any:
            order.append(message)
            return message

    async with ActorSystem() as system:
        ref = system.spawn(Slow)
        ref.tell("early")
        reply = asyncio.ensure_future(ref.ask("ask"))
        await entered.wait()  # started() now holds the mailbox
        assert order == []
        gate.set()
        assert await reply == "ask"
        assert order == ["started", "early", "ask"]


async def test_order_per_sender(system: ActorSystem) -> None:
    log: list[Any] = []
    ref = system.spawn(lambda: Recorder(log))
    for i in range(200):
        ref.tell(i)
    await ref.ask("done")
    assert log == [*range(200), "done"]


async def test_one_message_at_a_time() -> None:
    active = 0
    peak = 0

    class Yielder(Actor):
        async def receive(self, message: Any) -> Any:
            nonlocal active, peak
            active += 1
            peak = max(peak, active)
            for _ in range(3):
                await asyncio.sleep(0)  # awaits must not let the next message in
            active -= 1
            return message

    async with ActorSystem() as system:
        ref = system.spawn(Yielder)
        replies = await asyncio.gather(*(ref.ask(i) for i in range(50)))
    assert replies == list(range(50))
    assert peak == 1


async def test_ask_timeout_does_not_cancel_the_work(clock: VirtualClock) -> None:
    async with ActorSystem(clock=clock) as system:
        log: list[Any] = []
        ref = system.spawn(lambda: Recorder(log), name="slow")
        gate = asyncio.Event()
        pending = asyncio.ensure_future(ref.ask(("wait", gate), timeout=1.0))
        await clock.advance(0.5)
        assert not pending.done()
        await clock.advance(0.6)
        with pytest.raises(AskTimeout) as caught:
            await pending
        error = caught.value
        assert isinstance(error, asyncio.TimeoutError)
        assert isinstance(error, RuntimeFailure) and isinstance(error, ActorSystemError)
        assert (error.actor, error.message_type, error.timeout) == ("slow", "tuple", 1.0)
        assert system.metrics.asks_timed_out == 1
        # The work goes on; the late reply is dropped and the actor keeps serving.
        gate.set()
        assert await ref.ask("next") == 1
        assert log == ["waited", "next"]


async def test_ask_without_timeout_waits(clock: VirtualClock) -> None:
    async with ActorSystem(clock=clock) as system:
        ref = system.spawn(Recorder)
        gate = asyncio.Event()
        pending = asyncio.ensure_future(ref.ask(("wait", gate), timeout=None))
        await clock.advance(1000)
        assert not pending.done()
        gate.set()
        assert await pending == "waited"


async def test_mailbox_full_on_tell_and_ask(system: ActorSystem) -> None:
    gate = asyncio.Event()
    ref = system.spawn(Recorder, name="tiny", mailbox_size=2)
    busy = asyncio.ensure_future(ref.ask(("wait", gate)))
    await settle()  # the actor is now inside the first message
    ref.tell(1)
    ref.tell(2)
    with pytest.raises(MailboxFull) as caught:
        ref.tell(3)
    assert (caught.value.actor, caught.value.capacity) == ("tiny", 2)
    assert "full" in str(caught.value)
    with pytest.raises(MailboxFull):
        await ref.ask(4)
    assert system.metrics.mailbox_full_rejections == 2
    gate.set()
    assert await busy == "waited"
    assert await ref.ask(5) == 3


async def test_dead_actor_refuses_messages(system: ActorSystem) -> None:
    ref = system.spawn(Recorder, name="gone")
    await ref.ask(1)
    await ref.stop()
    with pytest.raises(ActorDeadError) as caught:
        ref.tell(2)
    assert caught.value.actor == "gone"
    with pytest.raises(ActorStopped):
        await ref.ask(3)
    assert system.metrics.dead_letters == 2
    assert system.actor("gone") is None
    assert "stopped" in repr(ref)


async def test_names_are_unique_while_alive(system: ActorSystem) -> None:
    ref = system.spawn(Recorder, name="one")
    with pytest.raises(ActorNameTaken):
        system.spawn(Recorder, name="one")
    await ref.stop()
    system.spawn(Recorder, name="one")  # the name is free again


async def test_actor_knows_its_ref_and_system(system: ActorSystem) -> None:
    class Self(Actor):
        async def receive(self, message: Any) -> Any:
            return self.ref, self.system

    ref = system.spawn(Self)
    assert await ref.ask("who") == (ref, system)


async def test_repr_shows_live_state(system: ActorSystem) -> None:
    gate = asyncio.Event()
    ref = system.spawn(Recorder, name="wallet/w_42")
    busy = asyncio.ensure_future(ref.ask(("wait", gate)))
    await settle()
    ref.tell(1)
    ref.tell(2)
    ref.tell(3)
    assert repr(ref) == "<LocalActorRef wallet/w_42 mailbox=3 restarts=0>"
    assert "ActorSystem test" in repr(system)
    gate.set()
    await busy


class Ledger(Actor):
    """Answers ``("commit", future)`` when the future resolves, without blocking its mailbox."""

    def __init__(self) -> None:
        self.handled: list[Any] = []

    async def receive(self, message: Any) -> Any:
        self.handled.append(message[0])
        if message[0] == "commit":
            return Deferred(message[1])
        if message[0] == "commit-fails":

            async def fail() -> None:
                await message[1]
                raise Boom("commit failed")

            return Deferred(fail())
        return list(self.handled)


async def test_deferred_does_not_block_the_mailbox(system: ActorSystem) -> None:
    loop = asyncio.get_running_loop()
    durable: asyncio.Future[str] = loop.create_future()
    ref = system.spawn(Ledger)
    commit = asyncio.ensure_future(ref.ask(("commit", durable)))
    await settle()
    # The next message is answered while the commit is still pending.
    assert await ref.ask(("read",)) == ["commit", "read"]
    assert not commit.done()
    durable.set_result("ok")
    assert await commit == "ok"


async def test_deferred_failure_fails_only_that_ask(system: ActorSystem) -> None:
    loop = asyncio.get_running_loop()
    gate: asyncio.Future[None] = loop.create_future()
    ref = system.spawn(Ledger)
    failing = asyncio.ensure_future(ref.ask(("commit-fails", gate)))
    await settle()
    gate.set_result(None)
    with pytest.raises(Boom, match="commit failed"):
        await failing
    assert await ref.ask(("read",)) == ["commit-fails", "read"]
    assert repr(ref).endswith("restarts=0>")  # no crash, no restart
    assert system.metrics.restarts == 0
    assert system.metrics.messages_failed == 1


async def test_deferred_on_tell_runs_too(system: ActorSystem) -> None:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[str] = loop.create_future()
    ref = system.spawn(Ledger)
    ref.tell(("commit", done))
    await ref.ask(("read",))
    done.set_result("x")
    await settle()
    assert system.tasks == set()


async def test_ref_is_abstract() -> None:
    with pytest.raises(TypeError):
        ActorRef()  # type: ignore[abstract]


async def test_spawn_rejects_foreign_parent(system: ActorSystem) -> None:
    system.register_entity(Recorder, lambda key: Recorder())
    with pytest.raises(TypeError):
        system.spawn(Recorder, parent=system.entity(Recorder, "k"))


async def test_bad_deferred_fails_the_ask_not_the_actor(system: ActorSystem) -> None:
    class Broken(Actor):
        async def receive(self, message: Any) -> Any:
            if message == "bad":
                return Deferred(42)  # type: ignore[arg-type]
            return "fine"

    ref = system.spawn(Broken)
    with pytest.raises(TypeError):
        await ref.ask("bad")
    assert await ref.ask("good") == "fine"


async def test_invalid_sizes_are_refused(system: ActorSystem) -> None:
    with pytest.raises(ValueError):
        system.spawn(Recorder, mailbox_size=0)
    with pytest.raises(ValueError):
        system.register_entity(Recorder, idle_timeout=0)
    with pytest.raises(ValueError):
        ActorSystem(default_mailbox_size=0)
