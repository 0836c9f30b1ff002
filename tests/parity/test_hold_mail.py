"""Holds are mailed as holds: placed (to both parties), released (to the payer), and a hold
posted in part is told by its posting transfer's mails alone."""

from __future__ import annotations

from email.message import EmailMessage

from httpkit import Api, MakeUser, Person
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


def _subjects(messages: list[EmailMessage], person: Person, transfer_id: str) -> list[str]:
    return sorted(
        str(message["Subject"])
        for message in messages
        if message["To"].addresses[0].addr_spec == person.email
        and message["X-Transakt-Transfer"] == transfer_id
    )


def test_hold_events_plan_hold_mails() -> None:
    hold = {"kind": "p2p", "id": "hld_1"}
    parties = {"from_user": "usr_a", "to_user": "usr_b"}
    assert planned_mails("transfer.pending", {"transfer": hold, **parties}) == [
        PlannedMail("usr_a", "hold_placed", "usr_b"),
        PlannedMail("usr_b", "hold_incoming", "usr_a"),
    ]
    released = {"transfer": {**hold, "reason": "expired"}, **parties}
    assert planned_mails("transfer.voided", released) == [
        PlannedMail("usr_a", "hold_released", "usr_b")
    ]
    in_part = {"transfer": {**hold, "reason": "posted 5 of 9"}, **parties}
    assert planned_mails("transfer.voided", in_part) == []


async def test_both_parties_hear_of_a_hold_and_the_payer_of_its_release(
    api: Api,
    make_user: MakeUser,
    smtp: SmtpServer,
    start_mail_worker: StartWorker,
    wallet_settings: Settings,
    quiet_mail: None,
) -> None:
    payer = await make_user(balance=10_000, name="Pat Payer")
    payee = await make_user(name="Quinn Payee")
    await start_mail_worker(mail_settings(wallet_settings, smtp.port))
    body = {"from_wallet": payer.wallet_id, "to_wallet": payee.wallet_id, "amount": 2_500,
            "currency": payer.wallet["currency"]}  # fmt: skip
    kept = (await api.post("/api/v1/holds", token=payer.token, json=body)).body["id"]
    released = (await api.post("/api/v1/holds", token=payer.token, json=body)).body["id"]
    assert (await api.post(f"/api/v1/holds/{released}/void", token=payee.token)).status == 200
    part = await api.post(f"/api/v1/holds/{kept}/post", token=payee.token, json={"amount": 1_000})
    assert part.status == 200, part.text
    posting = part.body["id"]

    messages = await smtp.catcher.wait_for(
        lambda got: (
            len(_subjects(got, payer, released)) == 2
            and len(_subjects(got, payee, posting)) == 1
            and len(_subjects(got, payer, posting)) == 1
        ),
        "the holds' mails",
    )
    assert _subjects(messages, payer, kept) == ["25.00 EUR held for Quinn Payee"]
    assert _subjects(messages, payee, kept) == ["Pat Payer holds 25.00 EUR for you"]
    assert _subjects(messages, payer, released) == [
        "25.00 EUR held for Quinn Payee",
        "Your hold of 25.00 EUR was released",
    ]
    assert _subjects(messages, payer, posting) == ["You sent 10.00 EUR"]
    assert _subjects(messages, payee, posting) == ["You received 10.00 EUR"]
