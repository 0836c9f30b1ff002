"""A mailer stopped in the middle of a batch hands the rest over at once, not after a lease."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email.message import EmailMessage

import asyncpg
import pytest
from httpkit import Api, MakeUser
from live.conftest import SmtpServer, StartWorker, mail_settings, wait_until

from mail.conftest import pay, set_aside_pending_mail
from transakt.actors.email import EmailActor, MailConfig
from transakt.config import Settings
from transakt.events.mail import MailSession, SmtpTransport
from transakt.runtime import ActorSystem
from transakt.storage.pool import create_pool

pytestmark = pytest.mark.usefixtures("quiet_mail")


class _Stuck:
    """A session that never hands a mail over (a server that stopped answering)."""

    def __init__(self, entered: asyncio.Event) -> None:
        self._entered = entered

    async def send(self, message: EmailMessage) -> None:
        self._entered.set()
        await asyncio.Event().wait()


class _StuckTransport:
    def __init__(self, inner: SmtpTransport) -> None:
        self._inner = inner
        self.entered = asyncio.Event()

    def describe(self) -> str:
        return self._inner.describe()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[MailSession]:
        async with self._inner.session():
            yield _Stuck(self.entered)


async def test_a_mailer_stopped_mid_batch_releases_its_claims_at_once(
    api: Api,
    make_user: MakeUser,
    smtp: SmtpServer,
    wallet_pool: asyncpg.Pool,
    wallet_settings: Settings,
    database_url: str,
    start_mail_worker: StartWorker,
) -> None:
    payer, payee = [await make_user(balance=10_000, name=f"Stop {i}") for i in range(2)]
    await set_aside_pending_mail(wallet_pool)
    payments = [await pay(api, payer, payee, 100 + i) for i in range(2)]
    events = [f"{p}:posted" for p in payments]

    # The production pool: it resets nothing when a connection comes back, so a claim lock
    # left on a connection would stay held (and the mails with it) until the lease.
    pool = await create_pool(database_url, min_size=1, max_size=2)
    system = ActorSystem("stopping-mailer")
    await system.start()
    try:
        transport = _StuckTransport(SmtpTransport("127.0.0.1", smtp.port, timeout=5.0))
        config = MailConfig(sender="Transakt <no-reply@transakt.local>")
        system.spawn(lambda: EmailActor(pool, transport, config), name="stuck-mailer")

        async def all_claimed() -> bool:
            attempts = await wallet_pool.fetch(
                "SELECT attempts FROM mail_deliveries WHERE event_id = ANY($1::text[])", events
            )
            return len(attempts) == 4 and all(row["attempts"] == 1 for row in attempts)

        await wait_until(all_claimed, "the mailer to claim the four mails")
        async with asyncio.timeout(20):
            await transport.entered.wait()
        # Stopping waits half a second for the stuck batch, then cancels it.
        await system.shutdown(timeout=0.5)
        stopped_at = time.time()

        await start_mail_worker(mail_settings(wallet_settings, smtp.port, outbox_poll_seconds=1.0))
        ids = set(payments)

        def four(got: list[EmailMessage]) -> bool:
            return sum(str(m["X-Transakt-Transfer"]) in ids for m in got) >= 4

        await smtp.catcher.wait_for(four, "the four mails, from the other worker")
        mine = [m for m in smtp.catcher.snapshot() if str(m["X-Transakt-Transfer"]) in ids]
        assert sorted(Counter(str(m["Message-ID"]) for m in mine).values()) == [1] * 4
        waited = max(smtp.catcher.arrived[id(m)] for m in mine) - stopped_at
        assert waited < 5.0, f"waited {waited:.1f}s: the claims outlived the stopped mailer"
    finally:
        await system.shutdown()
        await pool.close()
