"""Housekeeping's loop under its supervisor: a round the database fails waits for the next
round; a crash restarts the loop, with backoff."""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from transakt.http.keys import NODE_KEY
from transakt.services.housekeeping import Housekeeping


async def test_a_crashed_round_restarts_the_loop_and_a_database_failure_does_not(
    wallet_app: TestClient[web.Request, web.Application],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    node = wallet_app.app[NODE_KEY]
    housekeeping = Housekeeping(
        node.repository, node.sessions, retention_seconds=24 * 3600, every_seconds=0.01
    )
    run_once = housekeeping.run_once
    rounds = 0
    came_back = asyncio.Event()

    async def failing_rounds() -> None:
        nonlocal rounds
        rounds += 1
        if rounds == 1:
            raise ConnectionRefusedError("injected: the database is away")
        if rounds == 2:
            raise RuntimeError("injected: a bug in a round")
        await run_once()
        came_back.set()

    monkeypatch.setattr(housekeeping, "run_once", failing_rounds)
    with caplog.at_level(logging.WARNING, logger="transakt.housekeeping"):
        housekeeping.start()
        try:
            await asyncio.wait_for(came_back.wait(), 10)
            tasks = housekeeping.tasks
            # The database's failure was a failed round; only the bug crashed the loop.
            assert (tasks.crashes, tasks.restarts, tasks.failed, tasks.running) == (1, 1, 0, 1)
        finally:
            await housekeeping.stop()
    assert housekeeping.tasks.running == 0
    assert (
        "housekeeping failed: ConnectionRefusedError('injected: the database is away')"
        in caplog.messages
    )
