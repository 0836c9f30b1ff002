"""Small actors and helpers shared by the runtime tests."""

from __future__ import annotations

import asyncio
from typing import Any

from transakt.runtime import Actor


class Boom(Exception):
    """The crash the test actors raise on purpose."""


class Recorder(Actor):
    """Records every message; ``"boom"`` crashes, ``("wait", event)`` blocks until set."""

    def __init__(self, log: list[Any] | None = None) -> None:
        self.log = log if log is not None else []
        self.count = 0

    async def receive(self, message: Any) -> Any:
        if isinstance(message, tuple) and message[0] == "wait":
            await message[1].wait()
            self.log.append("waited")
            return "waited"
        if message == "boom":
            self.log.append("boom")
            raise Boom("boom")
        self.count += 1
        self.log.append(message)
        return self.count


async def settle() -> None:
    """Let every ready task run (a few loop turns)."""
    for _ in range(20):
        await asyncio.sleep(0)
