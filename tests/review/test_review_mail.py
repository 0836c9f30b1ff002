"""The payer of a held payment is mailed when it is held and when it is decided."""

from __future__ import annotations

from email.message import EmailMessage

from httpkit import Api, MakeUser, Person, pay_body
from live.conftest import (
    SmtpServer,
    StartWorker,
    mail_settings,
    quiet_mail,
    smtp,
    start_mail_worker,
)

from transakt.config import Settings
from transakt.events.mail.planning import PlannedMail, planned_mails

__all__ = ["quiet_mail", "smtp", "start_mail_worker"]  # the live suite's fixtures


def _to(messages: list[EmailMessage], person: Person, transfer_id: str) -> list[str]:
    return [
        str(message["Subject"])
        for message in messages
        if message["To"].addresses[0].addr_spec == person.email
        and message["X-Transakt-Transfer"] == transfer_id
    ]


def test_a_held_payment_means_one_mail_for_its_payer_and_none_for_other_pending_transfers() -> None:
    held = {"transfer": {"kind": "p2p"}, "from_user": "usr_a", "to_user": "usr_b"}
    assert planned_mails("transfer.pending", held) == [PlannedMail("usr_a", "held", "usr_b")]
    withdrawal = {"transfer": {"kind": "withdrawal"}, "from_user": "usr_a", "to_user": None}
    assert planned_mails("transfer.pending", withdrawal) == []


async def test_the_payer_is_mailed_when_held_and_when_decided(
    review_api: Api,
    make_user: MakeUser,
    operator: Person,
    smtp: SmtpServer,
    start_mail_worker: StartWorker,
    wallet_settings: Settings,
    quiet_mail: None,
) -> None:
    payer = await make_user(balance=1_000_000, name="Pat Payer")
    approved_to, rejected_to = await make_user(name="Ann Approved"), await make_user()
    await start_mail_worker(mail_settings(wallet_settings, smtp.port))
    first = await review_api.post(
        "/api/v1/transfers", token=payer.token, json=pay_body(payer, approved_to, 250_000)
    )
    second = await review_api.post(
        "/api/v1/transfers", token=payer.token, json=pay_body(payer, rejected_to, 300_000)
    )
    assert first.status == 202 and second.status == 202
    approved_id, rejected_id = str(first.body["id"]), str(second.body["id"])

    messages = await smtp.catcher.wait_for(
        lambda got: bool(_to(got, payer, approved_id)) and bool(_to(got, payer, rejected_id)),
        "the held mails",
    )
    assert _to(messages, payer, approved_id) == ["Your payment of 2,500.00 EUR is under review"]
    assert _to(messages, approved_to, approved_id) == []  # the payee hears of it when it is paid

    for transfer_id, decision in ((approved_id, "approve"), (rejected_id, "reject")):
        answer = await review_api.post(
            f"/api/v1/reviews/{transfer_id}/{decision}",
            token=operator.token,
            json={"note": "checked"},
        )
        assert answer.status == 200, answer.text

    messages = await smtp.catcher.wait_for(
        lambda got: (
            len(_to(got, payer, approved_id)) == 2
            and len(_to(got, payer, rejected_id)) == 2
            and len(_to(got, approved_to, approved_id)) == 1
        ),
        "the decisions' mails",
    )
    assert "You sent 2,500.00 EUR" in _to(messages, payer, approved_id)
    assert _to(messages, approved_to, approved_id) == ["You received 2,500.00 EUR"]
    assert "Your payment of 3,000.00 EUR failed" in _to(messages, payer, rejected_id)
    failed = next(
        m
        for m in messages
        if m["X-Transakt-Transfer"] == rejected_id and "failed" in str(m["Subject"])
    )
    body = failed.get_body(preferencelist=("plain",))
    assert body is not None and "declined after review" in body.get_content()
