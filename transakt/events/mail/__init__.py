"""E-mail about money movements: who gets which mail, how it reads, and how it is delivered.

No actors and no SQL here: the EmailActor (``transakt.actors.email``) drives these pieces.
"""

from transakt.events.mail.compose import compose, format_amount, message_id
from transakt.events.mail.planning import MailTemplate, PlannedMail, planned_mails
from transakt.events.mail.transports import (
    FileSink,
    MailSession,
    MailTransport,
    PermanentMailError,
    SmtpTransport,
    TransientMailError,
    transport_from_settings,
)

__all__ = [
    "FileSink",
    "MailSession",
    "MailTemplate",
    "MailTransport",
    "PermanentMailError",
    "PlannedMail",
    "SmtpTransport",
    "TransientMailError",
    "compose",
    "format_amount",
    "message_id",
    "planned_mails",
    "transport_from_settings",
]
