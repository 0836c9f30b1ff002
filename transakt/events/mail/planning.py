"""Which mails an event means, and for whom: the one place that decides who hears of what."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from transakt.storage import mail as store
from transakt.storage.mail import MailTemplate
from transakt.storage.typing import Connection

__all__ = [
    "MAIL_QUEUED_TOPIC",
    "MAIL_TOPICS",
    "MailTemplate",
    "PlannedMail",
    "plan_mails",
    "planned_mails",
]


#: The outbox topics that can mean mail (the migration's partial index lists the same).
MAIL_TOPICS: Final = ("transfer.posted", "transfer.voided", "transfer.pending")
#: Written beside a mail queued directly (an e-mail code): it only wakes the mailers.
MAIL_QUEUED_TOPIC: Final = "mail.queued"


@dataclass(frozen=True, slots=True)
class PlannedMail:
    """One mail to write: to ``recipient`` (a user id), about the other party if there is one."""

    recipient: str
    template: MailTemplate
    counterpart: str | None = None


def planned_mails(topic: str, payload: dict[str, Any]) -> list[PlannedMail]:
    """The mails a transfer event means: completed transfers to each side, failures to the payer."""
    # A posted P2P transfer is "sent" for the payer and "received" for the payee; a posted
    # deposit is "deposited" and a posted withdrawal "withdrawn" for the wallet's owner; a voided
    # transfer is "failed" for the user who asked for it (the settlement side has no user). A
    # pending P2P transfer is a payment held for review: "held" for the payer (its decision
    # then comes as "sent" when approved, or "failed" when rejected).
    transfer = payload.get("transfer") or {}
    kind = transfer.get("kind")
    payer: str | None = payload.get("from_user")
    payee: str | None = payload.get("to_user")
    mails: list[PlannedMail] = []
    is_hold = kind == "p2p" and str(transfer.get("id", "")).startswith("hld_")
    if topic == "transfer.posted":
        if kind == "p2p":
            if payer is not None:
                mails.append(PlannedMail(payer, "sent", payee))
            if payee is not None and payee != payer:
                mails.append(PlannedMail(payee, "received", payer))
        elif kind == "deposit" and payee is not None:
            mails.append(PlannedMail(payee, "deposited"))
        elif kind == "withdrawal" and payer is not None:
            mails.append(PlannedMail(payer, "withdrawn"))
    elif topic == "transfer.pending":
        if kind != "p2p" or payer is None:
            pass
        elif is_hold:  # a hold is pending by design: both parties hear it was placed
            mails.append(PlannedMail(payer, "hold_placed", payee))
            if payee is not None and payee != payer:
                mails.append(PlannedMail(payee, "hold_incoming", payer))
        else:
            mails.append(PlannedMail(payer, "held", payee))
    elif topic == "transfer.voided":
        if is_hold:
            # Posted in part: the posting transfer's own mails tell of it.
            if payer is not None and not str(transfer.get("reason", "")).startswith("posted "):
                mails.append(PlannedMail(payer, "hold_released", payee))
            return mails
        owner = payee if kind == "deposit" else payer
        if owner is not None:
            mails.append(PlannedMail(owner, "failed", payee if kind == "p2p" else None))
    return mails


async def plan_mails(connection: Connection, limit: int) -> tuple[int, int]:
    """Turn up to ``limit`` unplanned transfer events into mail rows; (events, mails) planned.

    One transaction: the events are claimed (other workers skip them), their mails written
    (an (event, recipient) pair only once), and the events marked planned.
    """
    async with connection.transaction():
        events = await store.claim_unplanned_events(connection, limit)
        if not events:
            return 0, 0
        plans: list[tuple[str, dict[str, Any], PlannedMail]] = []
        for event in events:
            payload = json.loads(event["payload"])
            for mail in planned_mails(event["topic"], payload):
                plans.append((event["event_id"], payload, mail))
        people = {mail.recipient for _e, _p, mail in plans} | {
            mail.counterpart for _e, _p, mail in plans if mail.counterpart is not None
        }
        users = await store.users_by_id(connection, sorted(people))
        rows = []
        for event_id, payload, mail in plans:
            recipient = users.get(mail.recipient)
            if recipient is None:
                continue  # no such user (cannot happen with the foreign keys): nobody to mail
            other = users.get(mail.counterpart) if mail.counterpart is not None else None
            rows.append(
                (
                    event_id,
                    mail.recipient,
                    mail.template,
                    recipient["email"],
                    recipient["name"],
                    other["name"] if other is not None else None,
                    json.dumps(payload["transfer"]),
                )
            )
        await store.insert_deliveries(connection, rows)
        await store.mark_planned(connection, [event["id"] for event in events])
    return len(events), len(rows)
