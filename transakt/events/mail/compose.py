"""How a mail reads: plain text and HTML from one delivery row, amounts exact, user input escaped.

Every attempt renders the same message from the same row, with the same Message-ID: a receiving
side can drop the copy that a crash between "the server accepted it" and "marked sent" resends.
"""

from __future__ import annotations

import hashlib
import html
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import TYPE_CHECKING, Any, Final

from transakt.money import CURRENCY_EXPONENTS

if TYPE_CHECKING:
    from transakt.storage.mail import MailDelivery

__all__ = ["compose", "format_amount", "message_id"]

_KIND_NOUN: Final = {"p2p": "payment", "deposit": "deposit", "withdrawal": "withdrawal"}
_DEFAULT_DOMAIN: Final = "transakt.local"


def format_amount(amount: int, currency: str) -> str:
    """``1234567, "EUR"`` → ``12,345.67 EUR``: integer arithmetic only, the currency's decimals."""
    exponent = CURRENCY_EXPONENTS.get(currency, 2)
    sign = "-" if amount < 0 else ""
    units, minor = divmod(abs(amount), 10**exponent)
    if exponent == 0:
        return f"{sign}{units:,} {currency}"
    return f"{sign}{units:,}.{minor:0{exponent}d} {currency}"


def message_id(event_id: str, recipient: str, domain: str = _DEFAULT_DOMAIN) -> str:
    """The stable Message-ID of the mail about ``event_id`` to ``recipient``."""
    digest = hashlib.sha256(f"{event_id}\x00{recipient}".encode()).hexdigest()[:40]
    return f"<{digest}@{domain}>"


def _domain(sender: str) -> str:
    _name, address = parseaddr(sender)
    domain = address.rpartition("@")[2]
    return domain or _DEFAULT_DOMAIN


def _one_line(text: str) -> str:
    # Names are user input: no control characters may reach a header or shape the text.
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())


def _lines(delivery: MailDelivery) -> tuple[str, list[str]]:
    """Subject and the body's sentences (plain text, before escaping)."""
    if delivery.template == "verify_email":
        code = str(delivery.transfer.get("code", ""))
        until = _when(delivery.transfer.get("expires_at"))
        return f"Your Transakt code: {code}", [
            f"Your code to verify this e-mail address is {code}.",
            f"Type it into Transakt before {until}. Until you do, payments sent to this "
            "address cannot reach you.",
            "If you did not sign up for Transakt, ignore this mail: nothing happens without "
            "the code.",
        ]
    transfer: dict[str, Any] = delivery.transfer
    amount = format_amount(int(transfer["amount"]), str(transfer["currency"]))
    other = _one_line(delivery.counterpart) if delivery.counterpart else "another user"
    template = delivery.template
    if template == "sent":
        return f"You sent {amount}", [f"You sent {amount} to {other}."]
    if template == "received":
        return f"You received {amount}", [f"{other} sent you {amount}."]
    if template == "deposited":
        return f"{amount} deposited", [f"{amount} from your bank account is now in your wallet."]
    if template == "held":
        return f"Your payment of {amount} is under review", [
            f"Your payment of {amount} to {other} is being reviewed before it is sent.",
            "The amount is reserved in your wallet meanwhile. We will write again as soon as "
            "it is decided.",
        ]
    if template == "hold_placed":
        return f"{amount} held for {other}", [
            f"{amount} is reserved in your wallet for {other}.",
            "It moves when the hold is posted; if it is voided or expires, it is yours again.",
        ]
    if template == "hold_incoming":
        return f"{other} holds {amount} for you", [
            f"{other} reserved {amount} for you. It reaches your wallet when the hold is posted.",
        ]
    if template == "hold_released":
        reason = _one_line(str(transfer.get("reason") or "voided"))
        return f"Your hold of {amount} was released", [
            f"Your hold of {amount} for {other} was released ({reason}).",
            "No money moved; the amount is available in your wallet again.",
        ]
    if template == "withdrawn":
        return f"{amount} withdrawn", [f"{amount} left your wallet for your bank account."]
    noun = _KIND_NOUN.get(str(transfer.get("kind")), "transfer")
    reason = _one_line(str(transfer.get("reason") or "no reason given"))
    return f"Your {noun} of {amount} failed", [
        f"Your {noun} of {amount} failed: {reason}.",
        "No money moved; your available balance is as it was before.",
    ]


def _when(value: object) -> str:
    """An ISO timestamp as people read it (UTC), or "it expires" when there is none."""
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return "it expires"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _details(delivery: MailDelivery) -> list[tuple[str, str]]:
    transfer = delivery.transfer
    rows: list[tuple[str, str]] = []
    if delivery.template == "verify_email":
        return rows
    if transfer.get("memo"):
        rows.append(("Memo", _one_line(str(transfer["memo"]))))
    rows.append(("Transfer", str(transfer["id"])))
    when = transfer.get("posted_at") or transfer.get("created_at")
    if when:
        rows.append(("Time", str(when)))
    return rows


def _event_time(delivery: MailDelivery) -> datetime | None:
    transfer = delivery.transfer
    when = transfer.get("posted_at") or transfer.get("created_at") or transfer.get("sent_at")
    if not when:
        return None
    try:
        return datetime.fromisoformat(str(when).replace("Z", "+00:00"))
    except ValueError:
        return None


def compose(delivery: MailDelivery, sender: str) -> EmailMessage:
    """The message for one delivery: text and HTML alternatives, stable Message-ID and Date."""
    subject, sentences = _lines(delivery)
    details = _details(delivery)
    name = _one_line(delivery.to_name)

    text = "\n".join(
        [f"Hello {name},", "", *sentences, "", *(f"{k}: {v}" for k, v in details), "", "Transakt"]
    )
    esc = html.escape
    detail_rows = "".join(
        f'<tr><td style="color:#666;padding-right:12px">{esc(k)}</td><td>{esc(v)}</td></tr>'
        for k, v in details
    )
    body_html = (
        '<!doctype html><html><body style="font-family:sans-serif">'
        f"<p>Hello {esc(name)},</p>"
        + "".join(f"<p>{esc(sentence)}</p>" for sentence in sentences)
        + f"<table>{detail_rows}</table><p>Transakt</p></body></html>"
    )

    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender
    local, _, domain = delivery.to_address.rpartition("@")
    message["To"] = Address(display_name=name, username=local, domain=domain)
    identifier = message_id(delivery.event_id, delivery.recipient, _domain(sender))
    message["Message-ID"] = identifier
    when = _event_time(delivery)
    if when is not None:
        message["Date"] = format_datetime(when)
    # RFC 3834: an automatic notice; auto-responders should not answer it.
    message["Auto-Submitted"] = "auto-generated"
    if "id" in delivery.transfer:
        message["X-Transakt-Transfer"] = str(delivery.transfer["id"])
    message.set_content(text)
    message.add_alternative(body_html, subtype="html")
    # A boundary from the Message-ID instead of a random one: every attempt, the same bytes.
    message.set_boundary(f"=_{identifier.strip('<>').partition('@')[0]}")
    return message
