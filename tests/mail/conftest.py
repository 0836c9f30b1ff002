"""Mail-claim fixtures: mail worker processes (mailer_process.py) and the live mail fixtures."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest
from httpkit import Api, Person
from live.conftest import DEADLINE_SECONDS, SmtpServer, quiet_mail, smtp, start_mail_worker

# The live suite's fixtures, for these tests too.
__all__ = ["quiet_mail", "smtp", "start_mail_worker"]

HELPER = Path(__file__).with_name("mailer_process.py")


class MailerProcess:
    """A running mailer_process.py: its output, line by line, and its end."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self._changed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))
            self._changed.set()
        self._changed.set()

    @property
    def output(self) -> str:
        """Everything it printed so far (stdout and stderr)."""
        return "\n".join(self.lines)

    async def lines_starting(self, prefix: str, count: int = 1) -> list[str]:
        """The lines it printed that start with ``prefix``, once there are ``count``."""
        async with asyncio.timeout(DEADLINE_SECONDS):
            while True:
                found = [line for line in self.lines if line.startswith(prefix)]
                if len(found) >= count:
                    return found
                if self._reader.done():
                    pytest.fail(f"the mailer ended without printing {prefix!r}:\n{self.output}")
                self._changed.clear()
                await self._changed.wait()

    async def line_starting(self, prefix: str) -> str:
        """The first line it printed that starts with ``prefix`` (waiting for it)."""
        return (await self.lines_starting(prefix))[0]

    async def ended(self) -> int:
        """Its exit status, once it has ended (negative: the signal that ended it)."""
        async with asyncio.timeout(DEADLINE_SECONDS):
            status = await self.process.wait()
            await self._reader
        return status

    async def stop(self) -> int:
        """SIGTERM, and its exit status."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        return await self.ended()

    async def kill(self) -> None:
        """End it for certain (teardown)."""
        if self.process.returncode is None:
            self.process.kill()
        await self.process.wait()
        await self._reader


StartMailer = Callable[..., Awaitable[MailerProcess]]


@pytest.fixture
async def start_mailer(database_url: str, smtp: SmtpServer) -> AsyncIterator[StartMailer]:
    """Start mailer processes (the settings and hooks as ``TRANSAKT_*``/``MAILER_TEST_*``
    variables); each is ready when returned, and killed at teardown if still running."""
    started: list[MailerProcess] = []

    async def start(**env: str) -> MailerProcess:
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(HELPER),
            env={
                **os.environ,
                "TRANSAKT_DATABASE_URL": database_url,
                "TRANSAKT_MAIL_IN_PROCESS": "true",
                "TRANSAKT_SMTP_HOST": "127.0.0.1",
                "TRANSAKT_SMTP_PORT": str(smtp.port),
                **env,
            },
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        mailer = MailerProcess(process)
        started.append(mailer)
        await mailer.line_starting("ready")
        return mailer

    try:
        yield start
    finally:
        for mailer in started:
            with contextlib.suppress(ProcessLookupError):
                await mailer.kill()


async def pay(api: Api, payer: Person, payee: Person, amount: int) -> str:
    """A P2P payment through the API (two mails: the payer's and the payee's); its id."""
    body = {
        "from_wallet": payer.wallet_id,
        "to_wallet": payee.wallet_id,
        "amount": amount,
        "currency": payer.wallet["currency"],
    }
    answer = await api.post("/api/v1/transfers", json=body, token=payer.token)
    assert answer.status == 201, answer.text
    return str(answer.body["id"])


async def set_aside_pending_mail(pool: asyncpg.Pool) -> None:
    """Fail every pending mail (e.g. the verification codes of users just made) and plan every
    event: what the test makes next is all there is to send."""
    await pool.execute("UPDATE outbox SET mail_planned_at = now() WHERE mail_planned_at IS NULL")
    await pool.execute(
        "UPDATE mail_deliveries SET status = 'failed', last_error = 'set aside by a test' "
        "WHERE status = 'pending'"
    )
