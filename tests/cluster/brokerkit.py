"""Broker-side faults for the cluster tests, through ``rabbitmqctl`` (the broker's own tool)."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess

from servicekit import unavailable

_NAME = re.compile(r'\{"connection_name","([^"]*)"\}')


def _rabbitmqctl(*args: str) -> str:
    tool = shutil.which("rabbitmqctl")
    if tool is None:
        unavailable("rabbitmqctl is not installed", "install rabbitmq-server to run this test")
    done = subprocess.run([tool, "-q", *args], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        unavailable(
            f"rabbitmqctl {args[0]} failed: {done.stderr.strip()}", "run as the broker's admin"
        )
    return done.stdout


async def drop_connections(name: str) -> int:
    """Have the broker close every client connection called ``name`` (as if the network
    dropped it); returns how many it closed."""

    def drop() -> int:
        closed = 0
        for line in _rabbitmqctl("list_connections", "pid", "client_properties").splitlines():
            pid, _, properties = line.partition("\t")
            found = _NAME.search(properties)
            if found and found.group(1) == name:
                _rabbitmqctl("close_connection", pid, "test: the connection drops")
                closed += 1
        return closed

    return await asyncio.to_thread(drop)


async def restart_broker() -> None:
    """Stop and start the broker's application (queues of durable declarations survive;
    connections and their exclusive queues do not)."""
    await asyncio.to_thread(_rabbitmqctl, "stop_app")
    await asyncio.to_thread(_rabbitmqctl, "start_app")
