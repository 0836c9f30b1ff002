"""Property: under concurrent senders, crashes and full mailboxes, every message is handled
exactly once and each sender's messages reach each actor in the order they were sent."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from transakt.runtime import Actor, ActorSystem, MailboxFull, RestartPolicy

from .helpers import Boom


class Sink(Actor):
    """Appends ``(sender, n)`` to a log that outlives restarts; crashes on chosen numbers."""

    def __init__(self, log: list[tuple[int, int]], crash_every: int | None) -> None:
        self.log = log
        self.crash_every = crash_every

    async def receive(self, message: Any) -> Any:
        if message == "flush":
            return len(self.log)
        sender, n = message
        self.log.append((sender, n))
        await asyncio.sleep(0)  # an await inside receive must not let another message in
        if self.crash_every and n % self.crash_every == self.crash_every - 1:
            raise Boom(f"crash on {message}")
        return n


@settings(max_examples=30, deadline=None)
@given(
    senders=st.integers(1, 8),
    actors=st.integers(1, 3),
    per_sender=st.integers(1, 40),
    capacity=st.integers(1, 16),
    crash_every=st.none() | st.integers(2, 9),
    pauses=st.lists(st.integers(0, 2), min_size=1, max_size=8),
)
async def test_exactly_once_in_sender_order(
    senders: int,
    actors: int,
    per_sender: int,
    capacity: int,
    crash_every: int | None,
    pauses: list[int],
) -> None:
    policy = RestartPolicy(max_restarts=100_000, min_backoff=0.0, max_backoff=0.0, jitter=0.0)
    logs: list[list[tuple[int, int]]] = [[] for _ in range(actors)]
    async with ActorSystem(default_policy=policy, default_mailbox_size=capacity) as system:
        refs = [
            system.spawn(lambda log=log: Sink(log, crash_every))  # type: ignore[misc]
            for log in logs
        ]

        async def sender(me: int) -> None:
            for n in range(per_sender):
                ref = refs[(n * 7 + me) % actors]
                while True:
                    try:
                        if n % 3 == 0:
                            with contextlib.suppress(Boom):  # the crash fails only this ask
                                assert await ref.ask((me, n), timeout=None) == n
                        else:
                            ref.tell((me, n))
                        break
                    except MailboxFull:
                        await asyncio.sleep(0)  # back-pressure: retry the same message
                for _ in range(pauses[(me + n) % len(pauses)]):
                    await asyncio.sleep(0)

        await asyncio.gather(*(sender(i) for i in range(senders)))
        for ref in refs:
            while True:
                try:
                    await ref.ask("flush", timeout=None)
                    break
                except MailboxFull:
                    await asyncio.sleep(0)

    handled = Counter(entry for log in logs for entry in log)
    assert set(handled.values()) == {1}, "a message was handled twice"
    assert len(handled) == senders * per_sender, "a message was lost"
    for log in logs:
        for me in range(senders):
            numbers = [n for who, n in log if who == me]
            assert numbers == sorted(numbers), f"sender {me} reordered: {numbers}"
