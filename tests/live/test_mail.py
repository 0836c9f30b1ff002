"""E-mail end to end: real transfers, a real SMTP server (aiosmtpd), real mail workers."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections import Counter
from email.message import EmailMessage
from pathlib import Path

import asyncpg
import pytest
from httpkit import Api, Fund, MakeUser, Person

from live.conftest import (
    SmtpServer,
    StartWorker,
    free_port,
    mail_settings,
    wait_until,
)
from transakt.config import Settings
from transakt.events.mail.planning import plan_mails
from transakt.storage.ledger import commit_batch
from transakt.storage.mail import claim_due
from transakt.storage.records import Applied, NewTransfer, Settlement

pytestmark = pytest.mark.usefixtures("quiet_mail")


def _about(messages: list[EmailMessage], transfer_id: str) -> list[EmailMessage]:
    return [m for m in messages if m["X-Transakt-Transfer"] == transfer_id]


def _text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def _html(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


def _has(messages: list[EmailMessage], pairs: set[tuple[str, str]]) -> bool:
    """Every (transfer id, recipient address) pair has arrived."""
    got = {(str(m["X-Transakt-Transfer"]), m["To"].addresses[0].addr_spec) for m in messages}
    return pairs <= got


async def _pay(api: Api, payer: Person, payee: Person, amount: int, memo: str | None = None) -> str:
    body = {
        "from_wallet": payer.wallet_id,
        "to_wallet": payee.wallet_id,
        "amount": amount,
        "currency": payer.wallet["currency"],
    }
    if memo is not None:
        body["memo"] = memo
    answer = await api.post("/api/v1/transfers", json=body, token=payer.token)
    assert answer.status == 201, answer.text
    return str(answer.body["id"])


async def test_a_payment_mails_the_payer_and_the_payee_with_the_right_amount(
    api: Api,
    make_user: MakeUser,
    smtp: SmtpServer,
    start_mail_worker: StartWorker,
    wallet_settings: Settings,
) -> None:
    alice = await make_user(balance=10_000, name='Alice <b>"&"</b>')
    bob = await make_user(name="Bob Builder")
    await start_mail_worker(mail_settings(wallet_settings, smtp.port))
    transfer_id = await _pay(api, alice, bob, 1234, memo="<script>alert(1)</script> lunch")

    messages = await smtp.catcher.wait_for(
        lambda got: _has(got, {(transfer_id, alice.email), (transfer_id, bob.email)}),
        "the payer's and the payee's mails",
    )
    about = _about(messages, transfer_id)
    assert sorted(m["To"].addresses[0].addr_spec for m in about) == sorted([alice.email, bob.email])
    sent = next(m for m in about if m["To"].addresses[0].addr_spec == alice.email)
    received = next(m for m in about if m["To"].addresses[0].addr_spec == bob.email)

    assert sent["Subject"] == "You sent 12.34 EUR"
    assert "You sent 12.34 EUR to Bob Builder." in _text(sent)
    assert received["Subject"] == "You received 12.34 EUR"
    assert 'Alice <b>"&"</b> sent you 12.34 EUR.' in _text(received)
    assert received["To"].addresses[0].display_name == "Bob Builder"
    # Names and memos are user input: escaped in HTML, never markup.
    html = _html(received)
    assert "<script>" not in _html(sent) and "&lt;script&gt;" in _html(sent)
    assert "<b>" not in html and "Alice &lt;b&gt;&quot;&amp;&quot;&lt;/b&gt;" in html
    assert sent["Message-ID"] != received["Message-ID"]
    assert sent["Auto-Submitted"] == "auto-generated"


async def test_deposits_withdrawals_and_failures_each_mail_their_owner(
    make_user: MakeUser,
    fund: Fund,
    smtp: SmtpServer,
    start_mail_worker: StartWorker,
    wallet_settings: Settings,
    wallet_pool: asyncpg.Pool,
) -> None:
    carol = await make_user(name="Carol")
    deposit = await fund(carol.wallet_id, 50_000)
    settlement = await wallet_pool.fetchval(
        "SELECT id FROM accounts WHERE kind = 'settlement' AND currency = 'EUR'"
    )
    withdrawn, refused = "trf_mail_w_" + os.urandom(6).hex(), "trf_mail_f_" + os.urandom(6).hex()
    async with wallet_pool.acquire() as connection:
        for transfer_id, amount in ((withdrawn, 2_000), (refused, 7_005)):
            hold = NewTransfer(
                id=transfer_id, kind="withdrawal", status="pending", from_account=carol.wallet_id,
                to_account=settlement, amount=amount, currency="EUR", memo=None,
                initiator_id=carol.user_id,
            )  # fmt: skip
            result = await commit_batch(connection, [hold])
            assert isinstance(result.outcomes[0], Applied)
        result = await commit_batch(
            connection,
            [Settlement(withdrawn, "posted"), Settlement(refused, "voided", "account closed")],
        )
        assert all(isinstance(outcome, Applied) for outcome in result.outcomes)
    await start_mail_worker(mail_settings(wallet_settings, smtp.port))

    expected = {(deposit, carol.email), (withdrawn, carol.email), (refused, carol.email)}
    messages = await smtp.catcher.wait_for(lambda got: _has(got, expected), "carol's three mails")
    subjects = {str(m["X-Transakt-Transfer"]): str(m["Subject"]) for m in messages}
    assert subjects[deposit] == "500.00 EUR deposited"
    assert subjects[withdrawn] == "20.00 EUR withdrawn"
    assert subjects[refused] == "Your withdrawal of 70.05 EUR failed"
    failed = _about(messages, refused)[0]
    assert "failed: account closed." in _text(failed)
    # The pending holds themselves are not news worth a mail.
    assert len(_about(messages, withdrawn)) == 1 and len(_about(messages, refused)) == 1


async def test_mail_waits_while_smtp_is_down_and_goes_out_once_when_it_is_back(
    api: Api,
    make_user: MakeUser,
    start_mail_worker: StartWorker,
    wallet_settings: Settings,
    wallet_pool: asyncpg.Pool,
) -> None:
    server = SmtpServer(port=free_port())  # not started: connections are refused
    dave = await make_user(balance=10_000, name="Dave")
    erin = await make_user(name="Erin")
    await start_mail_worker(mail_settings(wallet_settings, server.port))
    payments = [await _pay(api, dave, erin, 100 + i) for i in range(3)]

    async def retried_while_down() -> bool:
        fewest = await wallet_pool.fetchval(
            "SELECT min(attempts) FROM mail_deliveries WHERE event_id = ANY($1::text[])",
            [f"{p}:posted" for p in payments],
        )
        return fewest is not None and fewest >= 2

    await wait_until(retried_while_down, "every mail to be tried (and fail) at least twice")
    server.start()
    try:
        expected = {(p, who.email) for p in payments for who in (dave, erin)}
        await server.catcher.wait_for(lambda got: _has(got, expected), "six mails")

        async def all_marked_sent() -> bool:
            statuses = await wallet_pool.fetch(
                "SELECT status FROM mail_deliveries WHERE event_id = ANY($1::text[])",
                [f"{p}:posted" for p in payments],
            )
            return len(statuses) == 6 and all(row["status"] == "sent" for row in statuses)

        # Once marked sent, no worker will ever pick them up again: the count below is final.
        await wait_until(all_marked_sent, "the six mails to be marked sent")
        mine = [m for p in payments for m in _about(server.catcher.snapshot(), p)]
        assert len(mine) == 6
        assert len({m["Message-ID"] for m in mine}) == 6
        amounts = sorted(
            str(m["Subject"]) for m in mine if m["To"].addresses[0].addr_spec == dave.email
        )
        assert amounts == ["You sent 1.00 EUR", "You sent 1.01 EUR", "You sent 1.02 EUR"]
    finally:
        server.stop()


async def _planned_payment(
    api: Api, make_user: MakeUser, wallet_pool: asyncpg.Pool
) -> tuple[str, Person, Person]:
    """A payment whose two mails are planned (not sent: no worker runs yet)."""
    frank = await make_user(balance=1_000, name="Frank")
    grace = await make_user(name="Grace")
    payment = await _pay(api, frank, grace, 250)
    event = f"{payment}:posted"

    async def planned() -> bool:
        # Plan as a worker would (a relay may hold the event's row for a moment: try again).
        async with wallet_pool.acquire() as connection:
            await plan_mails(connection, 100)
            rows = await connection.fetchval(
                "SELECT count(*) FROM mail_deliveries WHERE event_id = $1", event
            )
        return bool(rows == 2)

    await wait_until(planned, "the payment's two mails to be planned")
    return payment, frank, grace


async def test_a_mail_claimed_by_a_hung_worker_is_sent_after_its_lease(
    api: Api,
    make_user: MakeUser,
    smtp: SmtpServer,
    start_mail_worker: StartWorker,
    wallet_settings: Settings,
    wallet_pool: asyncpg.Pool,
    database_url: str,
) -> None:
    payment, frank, grace = await _planned_payment(api, make_user, wallet_pool)
    # A worker claims them and hangs: its session stays open, it never marks them.
    hung = await asyncpg.connect(database_url)
    try:
        claimed_at = time.time()
        claimed = await claim_due(hung, 1000, lease_seconds=1.0)
        assert sum(d.event_id == f"{payment}:posted" for d in claimed) == 2
        await start_mail_worker(mail_settings(wallet_settings, smtp.port))
        expected = {(payment, frank.email), (payment, grace.email)}
        messages = await smtp.catcher.wait_for(lambda got: _has(got, expected), "the mails")
        assert len(_about(messages, payment)) == 2
        # Not before the hung worker's lease ran out: until then the mails were its to send.
        arrivals = [smtp.catcher.arrived[id(m)] for m in _about(messages, payment)]
        assert min(arrivals) >= claimed_at + 1.0
    finally:
        await hung.close()


async def test_a_mail_claimed_by_a_worker_that_died_is_sent_at_the_next_poll(
    api: Api,
    make_user: MakeUser,
    smtp: SmtpServer,
    start_mail_worker: StartWorker,
    wallet_settings: Settings,
    wallet_pool: asyncpg.Pool,
    database_url: str,
) -> None:
    payment, frank, grace = await _planned_payment(api, make_user, wallet_pool)
    # A worker claims them for the default lease (300 s); another runs beside it; it dies.
    doomed = await asyncpg.connect(database_url)
    claimed = await claim_due(doomed, 1000, lease_seconds=300.0)
    assert sum(d.event_id == f"{payment}:posted" for d in claimed) == 2
    await start_mail_worker(mail_settings(wallet_settings, smtp.port, outbox_poll_seconds=1.0))
    await doomed.close()  # its session ends, as when its process is killed
    died_at = time.time()
    expected = {(payment, frank.email), (payment, grace.email)}
    messages = await smtp.catcher.wait_for(lambda got: _has(got, expected), "the mails")
    assert len(_about(messages, payment)) == 2
    arrivals = [smtp.catcher.arrived[id(m)] for m in _about(messages, payment)]
    assert max(arrivals) < died_at + 5.0, "taken over at a poll, not after the lease"


async def test_the_local_sink_writes_each_mail_once_as_an_eml_file(
    api: Api,
    make_user: MakeUser,
    start_mail_worker: StartWorker,
    wallet_settings: Settings,
    tmp_path: Path,
) -> None:
    heidi = await make_user(balance=5_000, name="Heidi")
    ivan = await make_user(name="Ivan")
    await start_mail_worker(mail_settings(wallet_settings, None, data_dir=tmp_path))
    payment = await _pay(api, heidi, ivan, 4_321)
    sink = tmp_path / "mail"

    async def two_files_about_it() -> bool:
        files = list(sink.glob("*.eml")) if sink.exists() else []
        return sum(f"X-Transakt-Transfer: {payment}" in f.read_text() for f in files) == 2

    await wait_until(two_files_about_it, "two .eml files about the payment")
    assert not list(sink.glob(".*.tmp")), "no half-written files are left behind"


async def _run_worker(settings_env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "transakt", "worker",
        env={**os.environ, **settings_env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip


@pytest.mark.slow
async def test_two_worker_processes_share_the_mail_and_never_send_one_twice(
    api: Api,
    make_user: MakeUser,
    smtp: SmtpServer,
    database_url: str,
    redis_url: str,
) -> None:
    people = [await make_user(balance=100_000, name=f"Member {i}") for i in range(4)]
    env = {
        "TRANSAKT_DATABASE_URL": database_url,
        "TRANSAKT_REDIS_URL": redis_url,
        "TRANSAKT_SMTP_HOST": "127.0.0.1",
        "TRANSAKT_SMTP_PORT": str(smtp.port),
        "TRANSAKT_MAIL_BATCH_SIZE": "3",
        "TRANSAKT_MAIL_WORKERS": "2",
        "TRANSAKT_OUTBOX_POLL_SECONDS": "0.2",
        "TRANSAKT_LOG_LEVEL": "WARNING",
    }
    workers = [await _run_worker(env), await _run_worker(env)]
    try:
        payments = []
        for round_ in range(10):
            for index, payer in enumerate(people):
                payee = people[(index + 1) % len(people)]
                payments.append(await _pay(api, payer, payee, 100 + round_))
        ids = set(payments)

        def all_arrived(got: list[EmailMessage]) -> bool:
            return sum(str(m["X-Transakt-Transfer"]) in ids for m in got) >= 2 * len(payments)

        await smtp.catcher.wait_for(all_arrived, f"{2 * len(payments)} mails")
        for worker in workers:
            assert worker.returncode is None, "a worker died"
            worker.send_signal(signal.SIGTERM)
        outputs = [await asyncio.wait_for(w.communicate(), 30) for w in workers]
    finally:
        for worker in workers:
            if worker.returncode is None:
                worker.kill()
                await worker.wait()
    mine = [m for m in smtp.catcher.snapshot() if str(m["X-Transakt-Transfer"]) in ids]
    duplicates = [mid for mid, n in Counter(str(m["Message-ID"]) for m in mine).items() if n > 1]
    assert not duplicates, f"sent twice: {duplicates}"
    assert len(mine) == 2 * len(payments)
    for worker, (output, _) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, output.decode()
        assert b"Traceback" not in output, output.decode()


async def test_the_email_code_reaches_the_address_and_verifies_it(
    api: Api,
    make_user: MakeUser,
    smtp: SmtpServer,
    start_mail_worker: StartWorker,
    wallet_settings: Settings,
) -> None:
    person = await make_user(email_verified=False, name="Cora Code")
    await start_mail_worker(mail_settings(wallet_settings, smtp.port))

    def code_mail(got: list[EmailMessage]) -> EmailMessage | None:
        return next(
            (
                m
                for m in got
                if m["To"].addresses[0].addr_spec == person.email
                and str(m["Subject"]).startswith("Your Transakt code:")
            ),
            None,
        )

    messages = await smtp.catcher.wait_for(
        lambda got: code_mail(got) is not None, "the verification code mail"
    )
    mail = code_mail(messages)
    assert mail is not None
    code = str(mail["Subject"]).rsplit(" ", 1)[1]
    assert code.isdigit() and len(code) == 6
    assert f"Your code to verify this e-mail address is {code}." in _text(mail)
    assert mail["To"].addresses[0].display_name == "Cora Code"
    assert mail["X-Transakt-Transfer"] is None
    verified = await api.post("/api/v1/auth/verify-email", token=person.token, json={"code": code})
    assert (verified.status, verified.body["email_verified"]) == (200, True)
