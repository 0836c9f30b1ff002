"""Which mails an event means, and for whom: the one place that decides who hears of what."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

__all__ = ["MAIL_QUEUED_TOPIC", "MAIL_TOPICS", "MailTemplate", "PlannedMail", "planned_mails"]

MailTemplate = Literal["sent", "received", "deposited", "withdrawn", "failed", "verify_email"]

#: The outbox topics that can mean mail (the migration's partial index lists the same).
MAIL_TOPICS: Final = ("transfer.posted", "transfer.voided")
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
    # transfer is "failed" for the user who asked for it (the settlement side has no user).
    transfer = payload.get("transfer") or {}
    kind = transfer.get("kind")
    payer: str | None = payload.get("from_user")
    payee: str | None = payload.get("to_user")
    mails: list[PlannedMail] = []
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
    elif topic == "transfer.voided":
        owner = payee if kind == "deposit" else payer
        if owner is not None:
            mails.append(PlannedMail(owner, "failed", payee if kind == "p2p" else None))
    return mails
