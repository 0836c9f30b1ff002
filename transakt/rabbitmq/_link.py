"""BrokerLink: one connection to the broker, made again whenever it is lost, with everything on it.

aio-pika's robust connection restores the channels it knows after a reconnect, but a channel
whose close handler failed while the connection was going down is never restored (its
"restored" flag stays set), and its consumers are silently gone: asks then time out on a node
that reports itself connected. Rather than patch around that, the link owns the cycle on the
plain aiormq connection underneath aio-pika: connect, let ``on_open`` declare and consume on
fresh channels, wait for the connection to close, tell ``on_lost``, back off, connect again.
Every (re)connection is built by the same code, so what works once works after any outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Final

import aiormq
import aiormq.abc

from transakt.runtime import RestartPolicy, TaskSupervisor

__all__ = ["BrokerLink"]

log = logging.getLogger("transakt.cluster")

_MIN_DELAY: Final = 0.2
_MAX_DELAY: Final = 5.0
# The loop itself only crashes on a bug: restart it, for ever, with backoff.
_RESTARTS: Final = RestartPolicy(max_restarts=100, within=60.0, min_backoff=0.1, max_backoff=5.0)

OnOpen = Callable[[aiormq.abc.AbstractConnection], Awaitable[None]]
OnLost = Callable[[BaseException | None], None]


class BrokerLink:
    """Keeps one AMQP connection up; ``on_open`` builds on each one, ``on_lost`` hears of each
    loss."""

    def __init__(
        self,
        url: str,
        name: str,
        on_open: OnOpen,
        on_lost: OnLost,
        *,
        reconnect_seconds: float = 1.0,
    ) -> None:
        self.url = url
        self.name = name
        self._on_open = on_open
        self._on_lost = on_lost
        self._max_delay = max(reconnect_seconds, _MIN_DELAY)
        self.connection: aiormq.abc.AbstractConnection | None = None
        self.connected = False
        self.connects = 0
        self.tasks = TaskSupervisor(f"broker-link {name}", restart=_RESTARTS)

    def __repr__(self) -> str:
        return f"<BrokerLink {self.name} connected={self.connected} connects={self.connects}>"

    async def start(self) -> None:
        """Connect and build once (raising if the broker cannot be reached), then keep it up."""
        await self._open()
        self.tasks.spawn("broker-link", self._keep)

    async def close(self) -> None:
        """Stop reconnecting and close the connection."""
        await self.tasks.close(1.0)
        connection, self.connection = self.connection, None
        self.connected = False
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()

    async def _open(self) -> None:
        connection = await aiormq.connect(
            self.url, client_properties={"connection_name": self.name}
        )
        try:
            await self._on_open(connection)
        except BaseException:
            with contextlib.suppress(Exception):
                await connection.close()
            raise
        self.connection = connection
        self.connected = True
        self.connects += 1

    async def _keep(self) -> None:
        while True:
            connection = self.connection
            error: BaseException | None = None
            if connection is not None:
                try:
                    await connection.closing
                except asyncio.CancelledError:
                    raise
                except BaseException as closed:  # how it closed: a broker or network error
                    error = closed
            self.connected = False
            self.connection = None
            self._on_lost(error)
            delay = _MIN_DELAY
            while self.connection is None:
                await asyncio.sleep(delay)
                try:
                    await self._open()
                except Exception as failure:
                    log.warning(
                        "%s: reconnecting failed (%r); again in %.1fs", self.name, failure, delay
                    )
                    delay = min(delay * 2, self._max_delay)
            log.info("%s: connected to the broker again", self.name)
