"""The blocking runner: serves on the configured port and stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time

import aiohttp
import pytest

_SERVE = """
from transakt.config import Settings
from transakt.http import run
from transakt.config import ResolvedServices

settings = Settings(_env_file=None)
run(settings, ResolvedServices(database_url=settings.database.url, redis_url=settings.redis.url))
"""

_START_TIMEOUT_SECONDS = 30.0
_STOP_TIMEOUT_SECONDS = 20.0


async def _wait_until_healthy(url: str, process: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_SECONDS
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            assert process.returncode is None, "the server exited during start-up"
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.1)  # polling a port that is not open yet: nothing to await
    pytest.fail("the server did not become healthy in time")


@pytest.mark.slow
async def test_run_serves_and_stops_gracefully_on_sigterm(
    database_url: str, redis_url: str, bank_url: str, unused_tcp_port: int
) -> None:
    environment = {
        **os.environ,
        "TRANSAKT_PORT": str(unused_tcp_port),
        "TRANSAKT_HOST": "127.0.0.1",
        "TRANSAKT_DATABASE_URL": database_url,
        "TRANSAKT_REDIS_URL": redis_url,
        "TRANSAKT_BANK_URL": bank_url,
        "TRANSAKT_MAIL_IN_PROCESS": "false",  # no mail files in the working directory
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _SERVE,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await _wait_until_healthy(f"http://127.0.0.1:{unused_tcp_port}/healthz", process)
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), _STOP_TIMEOUT_SECONDS)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, stderr.decode()
    assert b"Traceback" not in stderr
