"""The Transakt actor runtime used on its own: entities, Deferred replies, a supervised crash,
passivation and events. Run it with ``python examples/embedded_runtime.py``."""

from __future__ import annotations

import asyncio
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Importable however it is run from the repository root, installed or not.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from transakt.runtime import (
    Actor,
    ActorSystem,
    AskTimeout,
    Deferred,
    RestartPolicy,
)

# Stands in for a database: accounts load from it when activated and save when passivated.
STORE: dict[str, int] = {}


@dataclass(frozen=True)
class Deposit:
    amount: int


@dataclass(frozen=True)
class Withdraw:
    amount: int


@dataclass(frozen=True)
class Balance:
    pass


class InsufficientFunds(Exception):
    pass


class Account(Actor):
    """One bank account per key: activated on demand, passivated when idle."""

    # A refusal is an answer, not a crash: the account keeps its state (no restart).
    reply_errors = (InsufficientFunds,)

    def __init__(self, key: str) -> None:
        self.key = key
        self.balance = 0

    async def started(self) -> None:
        self.balance = STORE.get(self.key, 0)
        print(f"  [{self.key}] activated with balance {self.balance}")

    async def stopped(self) -> None:
        STORE[self.key] = self.balance
        print(f"  [{self.key}] passivated, saved balance {self.balance}")

    async def receive(self, message: Any) -> Any:
        match message:
            case Deposit(amount):
                self.balance += amount
                self.system.events.publish("account.changed", (self.key, self.balance))
                return self.balance
            case Withdraw(amount):
                if amount > self.balance:
                    raise InsufficientFunds(f"{self.key} has {self.balance}, needs {amount}")
                self.balance -= amount  # reserved at once, so the next message sees it
                # Answer once the (simulated) durable write is done, without blocking the
                # mailbox in the meantime.
                return Deferred(self._commit(self.balance))
            case Balance():
                return self.balance
        raise TypeError(f"unexpected message {message!r}")

    async def _commit(self, balance: int) -> int:
        await asyncio.sleep(0.01)
        self.system.events.publish("account.changed", (self.key, balance))
        return balance


class Flaky(Actor):
    """Crashes on ``"bad"``; its supervisor restarts a fresh instance."""

    instances = 0

    def __init__(self) -> None:
        Flaky.instances += 1
        self.number = Flaky.instances

    async def receive(self, message: Any) -> Any:
        if message == "bad":
            raise ValueError("cannot handle 'bad'")
        return f"instance #{self.number} handled {message!r}"

    async def before_restart(self, error: BaseException, message: Any) -> None:
        print(f"  flaky instance #{self.number} crashed on {message!r}: {error}")


class Auditor(Actor):
    """An actor subscriber: counts the events it is told about."""

    def __init__(self) -> None:
        self.seen = 0

    async def receive(self, message: Any) -> Any:
        if message == "count":
            return self.seen
        self.seen += 1
        return None


async def main() -> None:
    # The runtime logs crashes with tracebacks; keep the demo output short.
    logging.basicConfig(level=logging.CRITICAL)
    async with ActorSystem("demo") as system:
        system.register_entity(Account, idle_timeout=0.2)
        system.events.subscribe(
            "account.changed", lambda topic, ev: print(f"  event {topic}: {ev}")
        )
        auditor = system.spawn(Auditor, name="auditor")
        system.events.subscribe("account.changed", auditor)

        print("1. entities are activated by their first message")
        alice = system.entity(Account, "alice")
        await alice.ask(Deposit(100))
        await system.entity(Account, "bob").ask(Deposit(20))
        print(f"   active accounts: {system.active_entities(Account)}")

        print("2. a Deferred reply: the withdrawal answers once committed")
        print(f"   alice after withdrawing 30: {await alice.ask(Withdraw(30))}")
        try:
            await alice.ask(Withdraw(1_000))
        except InsufficientFunds as error:
            print(f"   refused: {error}")

        print("3. a crash fails only its own ask; the actor is restarted")
        flaky = system.spawn(Flaky, policy=RestartPolicy(min_backoff=0.01, max_backoff=0.1))
        print(f"   {await flaky.ask('first')}")
        try:
            await flaky.ask("bad")
        except ValueError as error:
            print(f"   the asker got the error: {error}")
        print(f"   {await flaky.ask('second')}")

        print("4. idle entities are passivated, and come back on the next message")
        await asyncio.sleep(0.5)
        print(f"   active accounts: {system.active_entities(Account)}")
        print(f"   alice's balance, reloaded: {await alice.ask(Balance())}")

        print("5. asks time out without cancelling the work")
        try:
            await alice.ask(Withdraw(10), timeout=0.001)
        except AskTimeout as error:
            print(f"   {error}")
        await asyncio.sleep(0.05)  # the withdrawal still commits, just after the asker gave up
        print(f"   alice's balance: {await alice.ask(Balance())}")
        await system.events.drain()
        print(f"   auditor saw {await auditor.ask('count')} account events")

        metrics = system.metrics.snapshot()
        print(
            "metrics:",
            {k: v for k, v in metrics.items() if v and not k.startswith("active_entities.")},
        )
    print(f"after shutdown, the store holds {STORE}")


if __name__ == "__main__":
    asyncio.run(main())
