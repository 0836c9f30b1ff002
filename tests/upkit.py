"""Reading ``transakt up``'s banner from its process, as a person at the terminal would."""

from __future__ import annotations

import asyncio

import pytest


async def read_up_banner(process: asyncio.subprocess.Process, seconds: float) -> str:
    """Everything ``transakt up`` printed until it said it is ready; fail if it exits first or
    takes longer than ``seconds``."""
    assert process.stdout is not None
    output: list[str] = []
    async with asyncio.timeout(seconds):
        while not any("Press Ctrl-C to stop." in line for line in output):
            line = await process.stdout.readline()
            if not line:
                pytest.fail("transakt up exited early:\n" + "".join(output))
            output.append(line.decode(errors="replace"))
    return "".join(output)
