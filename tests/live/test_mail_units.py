"""Mail pieces without servers: amounts, who gets what, the message itself, the file sink."""

from __future__ import annotations

from pathlib import Path

import pytest

from transakt.events.mail import (
    FileSink,
    PlannedMail,
    compose,
    format_amount,
    message_id,
    planned_mails,
)
from transakt.storage.mail import MailDelivery


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        (1234, "EUR", "12.34 EUR"),
        (5, "EUR", "0.05 EUR"),
        (100_000_000, "USD", "1,000,000.00 USD"),
        (1234, "JPY", "1,234 JPY"),
        (1234, "BHD", "1.234 BHD"),
        (10**15, "EUR", "10,000,000,000,000.00 EUR"),
        (-250, "GBP", "-2.50 GBP"),
    ],
)
def test_amounts_are_formatted_exactly_from_minor_units(
    amount: int, currency: str, text: str
) -> None:
    assert format_amount(amount, currency) == text


def _event(kind: str, from_user: str | None, to_user: str | None) -> dict[str, object]:
    return {"transfer": {"id": "trf_1", "kind": kind}, "from_user": from_user, "to_user": to_user}


def test_each_event_mails_the_right_people() -> None:
    assert planned_mails("transfer.posted", _event("p2p", "u_a", "u_b")) == [
        PlannedMail("u_a", "sent", "u_b"),
        PlannedMail("u_b", "received", "u_a"),
    ]
    assert planned_mails("transfer.posted", _event("deposit", None, "u_a")) == [
        PlannedMail("u_a", "deposited")
    ]
    assert planned_mails("transfer.posted", _event("withdrawal", "u_a", None)) == [
        PlannedMail("u_a", "withdrawn")
    ]
    assert planned_mails("transfer.voided", _event("withdrawal", "u_a", None)) == [
        PlannedMail("u_a", "failed")
    ]
    assert planned_mails("transfer.voided", _event("deposit", None, "u_a")) == [
        PlannedMail("u_a", "failed")
    ]
    assert planned_mails("transfer.pending", _event("deposit", None, "u_a")) == []
    assert planned_mails("balance.changed", {"wallet": {}}) == []


def _delivery(**changes: object) -> MailDelivery:
    fields: dict[str, object] = {
        "event_id": "trf_1:posted",
        "recipient": "usr_b",
        "template": "received",
        "to_address": "bob@example.test",
        "to_name": "Bob",
        "counterpart": "Mallory\r\nBcc: victim@example.test",
        "transfer": {
            "id": "trf_1", "kind": "p2p", "amount": 1999, "currency": "EUR",
            "memo": "<img src=x onerror=alert(1)>", "posted_at": "2024-05-01T10:00:00.000000Z",
        },
    }  # fmt: skip
    fields.update(changes)
    return MailDelivery(**fields)  # type: ignore[arg-type]


def test_a_message_is_stable_escaped_and_cannot_be_turned_into_more_headers() -> None:
    first = compose(_delivery(), "Transakt <no-reply@mail.example>")
    again = compose(_delivery(attempts=3), "Transakt <no-reply@mail.example>")
    assert first.as_bytes() == again.as_bytes()  # every attempt sends the same message
    assert first["Message-ID"] == message_id("trf_1:posted", "usr_b", "mail.example")
    assert first["Bcc"] is None
    text = first.get_body(preferencelist=("plain",))
    html = first.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    assert "Mallory Bcc: victim@example.test sent you 19.99 EUR." in text.get_content()
    assert "<img" not in html.get_content() and "&lt;img src=x" in html.get_content()
    assert first["Date"] == "Wed, 01 May 2024 10:00:00 +0000"


async def test_the_file_sink_keeps_one_file_per_mail_however_often_it_is_sent(
    tmp_path: Path,
) -> None:
    sink = FileSink(tmp_path / "mail")
    message = compose(_delivery(), "Transakt <no-reply@transakt.local>")
    async with sink.session() as session:
        await session.send(message)
        await session.send(message)
    files = list((tmp_path / "mail").iterdir())
    assert len(files) == 1 and files[0].suffix == ".eml"
    assert b"You received 19.99 EUR" in files[0].read_bytes()
