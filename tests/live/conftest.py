"""Live-feed and mail fixtures: a real SMTP server (aiosmtpd), mail workers, websocket helpers."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import asyncpg
import pytest
import waits
from aiosmtpd.controller import Controller

from transakt.composition.notifications import Notifications, open_notifications
from transakt.config import Settings
from transakt.runtime import ActorSystem

# Every wait in these tests has a deadline this long: generous for a busy CI machine.
DEADLINE_SECONDS = 20.0


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def wait_until(
    condition: Callable[[], bool | Awaitable[bool]], what: str, deadline: float = DEADLINE_SECONDS
) -> None:
    """``waits.wait_until`` with this suite's deadline."""
    await waits.wait_until(condition, what, deadline)


class MailCatcher:
    """The aiosmtpd handler: keeps every accepted message and wakes waiters."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        # When each message (by id()) was accepted, on the wall clock.
        self.arrived: dict[int, float] = {}
        self._lock = threading.Lock()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Accept the mail (called on the SMTP server's thread)."""
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            self.messages.append(message)
            self.arrived[id(message)] = time.time()
            waiters = list(self._waiters)
        for loop, event in waiters:
            loop.call_soon_threadsafe(event.set)
        return "250 Message accepted"

    def snapshot(self) -> list[EmailMessage]:
        """The messages accepted so far."""
        with self._lock:
            return list(self.messages)

    async def wait_for(
        self, predicate: Callable[[list[EmailMessage]], bool], what: str
    ) -> list[EmailMessage]:
        """Wait until ``predicate(messages)`` holds; fail past the deadline."""
        event = asyncio.Event()
        waiter = (asyncio.get_running_loop(), event)
        with self._lock:
            self._waiters.append(waiter)
        try:
            async with asyncio.timeout(DEADLINE_SECONDS):
                while not predicate(messages := self.snapshot()):
                    await event.wait()
                    event.clear()
            return messages
        except TimeoutError:
            pytest.fail(f"timed out waiting for {what}; got {len(self.snapshot())} message(s)")
        finally:
            with self._lock:
                self._waiters.remove(waiter)


@dataclass
class SmtpServer:
    """A real SMTP server on 127.0.0.1; ``stop()`` and ``start()`` take it down and up again."""

    port: int
    catcher: MailCatcher = field(default_factory=MailCatcher)
    _controller: Controller | None = None

    def start(self) -> None:
        """Listen (again) on the same port."""
        if self._controller is None:
            self._controller = Controller(self.catcher, hostname="127.0.0.1", port=self.port)
            self._controller.start()

    def stop(self) -> None:
        """Stop listening: connections are refused until start()."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    """A running SMTP server on a free port for one test."""
    server = SmtpServer(port=free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def quiet_mail(wallet_pool: asyncpg.Pool) -> None:
    """Set aside the mail other tests' transfers would mean: this test sees only its own."""
    await wallet_pool.execute(
        "UPDATE outbox SET mail_planned_at = now() WHERE mail_planned_at IS NULL"
    )
    await wallet_pool.execute(
        "UPDATE mail_deliveries SET status = 'failed', last_error = 'set aside by a test' "
        "WHERE status = 'pending'"
    )


def mail_settings(base: Settings, port: int | None, **changes: Any) -> Settings:
    """Settings of a mail worker that talks to the test's SMTP server and retries quickly."""
    update: dict[str, Any] = {
        "smtp_host": "127.0.0.1" if port is not None else None,
        "smtp_port": port or 1025,
        "smtp_timeout_seconds": 5.0,
        "mail_retry_min_seconds": 0.05,
        "mail_retry_max_seconds": 0.2,
        "outbox_poll_seconds": 0.2,
        "mail_in_process": True,
    }
    update.update(changes)
    return base.with_values(**update)


StartWorker = Callable[[Settings], Awaitable[Notifications]]


@pytest.fixture
async def start_mail_worker(database_url: str) -> AsyncIterator[StartWorker]:
    """Start in-process mail workers (own connections, own actor system), stopped at teardown."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(settings: Settings) -> Notifications:
            """Start one worker with ``settings``."""
            system = ActorSystem("mail-test")
            await system.start()
            stack.push_async_callback(system.shutdown)
            return await stack.enter_async_context(
                open_notifications(settings, database_url, system, live=False, mail=True)
            )

        yield start
