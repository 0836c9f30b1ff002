"""Mail workers as real processes sharing one database and one real SMTP server (aiosmtpd).

A mailer killed between the server's acceptance of a mail and marking it costs one duplicate
of that mail (same Message-ID) and no wait beyond another worker's next poll; a slow mailer
that is alive is never overtaken; several mailers send every mail exactly once.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from collections.abc import Callable
from email.message import EmailMessage

import asyncpg
import pytest
from httpkit import Api, MakeUser, Person
from live.conftest import SmtpServer, StartWorker, mail_settings, wait_until

from mail.conftest import StartMailer, pay, set_aside_pending_mail
from transakt.config import Settings

pytestmark = pytest.mark.usefixtures("quiet_mail")

# Well under the 300 s default lease the old design made a dead worker's batch wait.
PROMPT_SECONDS = 5.0


def _about(messages: list[EmailMessage], payments: list[str]) -> list[EmailMessage]:
    ids = set(payments)
    return [m for m in messages if str(m["X-Transakt-Transfer"]) in ids]


def _all_arrived(payments: list[str]) -> Callable[[list[EmailMessage]], bool]:
    expected = 2 * len(payments)  # payer's and payee's
    keys = {(p, who) for p in payments for who in ("sent", "received")}

    def check(got: list[EmailMessage]) -> bool:
        mine = _about(got, payments)
        seen = {(str(m["X-Transakt-Transfer"]), _kind(m)) for m in mine}
        return len(mine) >= expected and seen == keys

    return check


def _kind(message: EmailMessage) -> str:
    return "sent" if str(message["Subject"]).startswith("You sent") else "received"


async def _people(make_user: MakeUser, pool: asyncpg.Pool, count: int) -> list[Person]:
    people = [await make_user(balance=100_000, name=f"Mailer {i}") for i in range(count)]
    await set_aside_pending_mail(pool)  # their verification codes are not this test's mail
    return people


async def _payments(api: Api, people: list[Person], count: int) -> list[str]:
    return [
        await pay(api, people[i % len(people)], people[(i + 1) % len(people)], 100 + i)
        for i in range(count)
    ]


async def _claims(pool: asyncpg.Pool, payments: list[str]) -> list[asyncpg.Record]:
    return list(
        await pool.fetch(
            "SELECT event_id, recipient, status, attempts FROM mail_deliveries "
            "WHERE event_id = ANY($1::text[])",
            [f"{p}:posted" for p in payments],
        )
    )


async def _all_marked_sent(pool: asyncpg.Pool, payments: list[str]) -> None:
    async def marked() -> bool:
        rows = await _claims(pool, payments)
        return len(rows) == 2 * len(payments) and all(r["status"] == "sent" for r in rows)

    # Once marked sent no worker takes them again: what has arrived by then is final.
    await wait_until(marked, "every mail to be marked sent")


async def test_a_mailer_killed_after_the_server_accepted_a_mail_costs_one_duplicate_only(
    api: Api,
    make_user: MakeUser,
    smtp: SmtpServer,
    wallet_pool: asyncpg.Pool,
    wallet_settings: Settings,
    start_mailer: StartMailer,
    start_mail_worker: StartWorker,
) -> None:
    people = await _people(make_user, wallet_pool, 3)
    batch = await _payments(api, people, 4)  # eight mails: one batch for one mailer
    # The doomed mailer plans and claims the whole batch, then waits at the gate, alive.
    doomed = await start_mailer(MAILER_TEST_GATED="1", MAILER_TEST_KILL_AFTER_ACCEPTED="2")

    async def all_claimed() -> bool:
        rows = await _claims(wallet_pool, batch)
        return len(rows) == 8 and all(r["attempts"] == 1 for r in rows)

    # (No other mailer runs yet: it claimed them all.)
    await wait_until(all_claimed, "the doomed mailer to claim all eight mails")

    # The survivor, with the default lease and poll, runs beside it. While the doomed mailer
    # is alive (however slow), the survivor sends other mail but never the doomed one's.
    survivor_settings = mail_settings(wallet_settings, smtp.port, outbox_poll_seconds=1.0)
    assert survivor_settings.mail.lease_seconds == 300.0
    await start_mail_worker(survivor_settings)
    probe = await _payments(api, people, 1)
    await smtp.catcher.wait_for(_all_arrived(probe), "the survivor to send a later payment's mail")
    assert _about(smtp.catcher.snapshot(), batch) == [], "a live mailer's claim was taken"

    # Open the gate: one mail goes and is marked, the next is accepted, and the process dies.
    doomed.process.send_signal(signal.SIGUSR1)
    fatal = (await doomed.line_starting("accepted-unmarked ")).split(" ", 1)[1]
    assert await doomed.ended() == -signal.SIGKILL

    await smtp.catcher.wait_for(_all_arrived(batch), "all eight mails")
    await _all_marked_sent(wallet_pool, batch)
    mine = _about(smtp.catcher.snapshot(), batch)
    copies = Counter(str(m["Message-ID"]) for m in mine)
    assert len(copies) == 8
    duplicates = {mid: n for mid, n in copies.items() if n > 1}
    # At most one duplicate: the mail accepted and never marked, with the same Message-ID.
    assert duplicates == {fatal: 2}, duplicates

    arrived = smtp.catcher.arrived
    ordered = sorted(mine, key=lambda m: arrived[id(m)])
    first_sent, fatal_first = ordered[0], ordered[1]
    assert str(fatal_first["Message-ID"]) == fatal
    killed_at = arrived[id(fatal_first)]  # the kill followed this acceptance at once
    # Everything else of the dead mailer's batch: the six it never tried, and the fatal copy.
    resent = ordered[2:]
    assert len(resent) == 7 and first_sent not in resent
    waits = [arrived[id(m)] - killed_at for m in resent]
    print(
        f"\nafter the kill: the first resent mail {min(waits):.2f}s, the last {max(waits):.2f}s"
        f" (survivor poll 1.0s, lease 300s)"
    )
    assert max(waits) < PROMPT_SECONDS, waits


async def test_a_slow_mailer_renews_its_claims_and_is_never_overtaken(
    api: Api,
    make_user: MakeUser,
    smtp: SmtpServer,
    wallet_pool: asyncpg.Pool,
    wallet_settings: Settings,
    start_mailer: StartMailer,
    start_mail_worker: StartWorker,
) -> None:
    people = await _people(make_user, wallet_pool, 3)
    batch = await _payments(api, people, 3)  # six mails
    lease = 4.0
    # One second per mail: its batch takes about six, longer than its lease. A renewal before
    # each send once half the lease has passed keeps the claims; without it, the fast worker
    # beside it would take the rest of the batch after four seconds and send them twice.
    slow = await start_mailer(
        MAILER_TEST_SEND_DELAY_SECONDS="1.0", TRANSAKT_MAIL_LEASE_SECONDS=str(lease)
    )

    async def all_claimed() -> bool:
        rows = await _claims(wallet_pool, batch)
        return len(rows) == 6 and all(r["attempts"] == 1 for r in rows)

    await wait_until(all_claimed, "the slow mailer to claim all six mails")
    claimed_at = time.time()
    await start_mail_worker(
        mail_settings(wallet_settings, smtp.port, mail_lease_seconds=lease, outbox_poll_seconds=0.2)
    )
    await smtp.catcher.wait_for(_all_arrived(batch), "all six mails")
    await _all_marked_sent(wallet_pool, batch)
    # The slow mailer sent its whole batch itself (a mail taken over would be dropped, not
    # sent): once it has, the count below is final.
    handed_over = await slow.lines_starting("accepted ", 6)
    mine = _about(smtp.catcher.snapshot(), batch)
    assert {line.split(" ", 1)[1] for line in handed_over} == {str(m["Message-ID"]) for m in mine}
    assert sorted(Counter(str(m["Message-ID"]) for m in mine).values()) == [1] * 6
    last = max(smtp.catcher.arrived[id(m)] for m in mine)
    assert last - claimed_at > lease, "the batch did not outlast the lease: nothing was shown"
    assert slow.process.returncode is None
    assert await slow.stop() == 0, slow.output


async def test_several_mailer_processes_send_every_mail_exactly_once(
    api: Api,
    make_user: MakeUser,
    smtp: SmtpServer,
    wallet_pool: asyncpg.Pool,
    start_mailer: StartMailer,
) -> None:
    people = await _people(make_user, wallet_pool, 4)
    env = {
        "TRANSAKT_MAIL_BATCH_SIZE": "3",
        "TRANSAKT_MAIL_WORKERS": "2",
        "TRANSAKT_OUTBOX_POLL_SECONDS": "0.2",
        "MAILER_TEST_SEND_DELAY_SECONDS": "0.01",
    }
    mailers = await asyncio.gather(*(start_mailer(**env) for _ in range(3)))
    payments = await _payments(api, people, 20)
    await smtp.catcher.wait_for(_all_arrived(payments), "forty mails")
    await _all_marked_sent(wallet_pool, payments)
    for mailer in mailers:  # stopped: nothing more can arrive
        assert await mailer.stop() == 0, mailer.output
        assert "Traceback" not in mailer.output, mailer.output
    mine = _about(smtp.catcher.snapshot(), payments)
    copies = Counter(str(m["Message-ID"]) for m in mine)
    assert len(copies) == 40
    assert [mid for mid, n in copies.items() if n > 1] == []
    # The work was shared: each of the three processes sent some of it.
    senders = [
        {line.split(" ", 1)[1] for line in mailer.lines if line.startswith("accepted ")}
        for mailer in mailers
    ]
    assert all(senders), [len(s) for s in senders]
