"""A mail worker process for the tests: the real EmailActors (through ``open_notifications``)
sending to a real SMTP server, with test-only fault hooks around the real transport.

Settings come from the ``TRANSAKT_*`` environment as in ``transakt worker``; the hooks from:

- ``MAILER_TEST_GATED=1``: no mail is handed to the server until the process gets SIGUSR1
  (meanwhile the worker sits on the batch it claimed, alive);
- ``MAILER_TEST_SEND_DELAY_SECONDS``: a pause before each mail is handed over (a slow worker);
- ``MAILER_TEST_KILL_AFTER_ACCEPTED``: n; right after the server accepted the n-th mail, and so
  before the worker could mark it sent, print ``accepted-unmarked <Message-ID>`` and SIGKILL
  this process.

It prints ``ready`` once its mailers run and ``accepted <Message-ID>`` for each mail the server
accepted, and stops cleanly on SIGTERM.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email.message import EmailMessage

from transakt.composition.notifications import open_notifications
from transakt.config import Settings
from transakt.events.mail import MailSession, MailTransport, transport_from_settings
from transakt.runtime import ActorSystem


class _FaultySession:
    def __init__(self, inner: MailSession, transport: FaultyTransport) -> None:
        self._inner = inner
        self._transport = transport

    async def send(self, message: EmailMessage) -> None:
        transport = self._transport
        await transport.gate.wait()
        if transport.delay > 0:
            await asyncio.sleep(transport.delay)
        await self._inner.send(message)
        print(f"accepted {message['Message-ID']}", flush=True)
        transport.accepted += 1
        if transport.accepted == transport.kill_after:
            print(f"accepted-unmarked {message['Message-ID']}", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)


class FaultyTransport:
    """The real transport, with the hooks of the module docstring."""

    def __init__(self, inner: MailTransport) -> None:
        self._inner = inner
        self.gate = asyncio.Event()
        if os.environ.get("MAILER_TEST_GATED") == "1":
            asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, self.gate.set)
        else:
            self.gate.set()
        self.delay = float(os.environ.get("MAILER_TEST_SEND_DELAY_SECONDS", "0"))
        self.kill_after = int(os.environ.get("MAILER_TEST_KILL_AFTER_ACCEPTED", "0"))
        self.accepted = 0

    def describe(self) -> str:
        return self._inner.describe()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[MailSession]:
        async with self._inner.session() as session:
            yield _FaultySession(session, self)


async def main() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    database_url = os.environ["TRANSAKT_DATABASE_URL"]
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    system = ActorSystem("mailer-process")
    await system.start()
    try:
        transport = FaultyTransport(transport_from_settings(settings))
        async with open_notifications(
            settings, database_url, system, live=False, mail=True, transport=transport
        ):
            print("ready", flush=True)
            await stop.wait()
    finally:
        await system.shutdown()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(main())
