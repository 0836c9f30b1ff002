"""How a ledger event travels on RabbitMQ: its routing key and its message, both ways.

Messages
    Routing key ``<topic>.<currency>``: ``transfer.posted.EUR``, ``transfer.pending.USD``,
    ``balance.changed.EUR`` (written before migration 0005 only), ``mail.queued.XXX``. The
    currency is the transfer's (or the wallet's), and ``XXX`` (ISO 4217: no currency) for events
    that have none, so every key is topic words then one currency word: bind ``transfer.*.EUR``,
    ``*.*.USD``, ``transfer.posted.#`` or ``#``.

    Body (``application/json``, persistent): ``{"event_id", "sequence", "topic", "currency",
    "created_at", "payload"}``. ``event_id`` is unique (also the AMQP ``message_id``: consumers
    drop repeats by it); ``sequence`` is the outbox row id, unique and allocated in write order,
    which is *not* commit order; ``created_at`` is RFC 3339; ``payload`` is the outbox payload as
    stored. A transfer event's payload carries ``transfer`` (the transfer as the API shows it),
    ``from_user``/``to_user``, and ``wallets``: the state (balance, pending, available) of the
    payer's and payee's wallets that the event's commit moved, as of the end of that commit,
    like TigerBeetle's change feed carries the accounts as of each transfer. Header
    ``transakt-xid`` holds the writing transaction (as text), which the live hub needs; with it
    the subscriber rebuilds the very ``OutboxEvent`` the outbox relay would have.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

import aio_pika
import orjson

from transakt.storage.event_stream import (
    StreamEvent,
)
from transakt.storage.outbox import OutboxEvent

__all__ = [
    "NO_CURRENCY",
    "XID_HEADER",
    "decode_event",
    "encode_event",
    "exchange_name",
    "routing_key",
]

#: The routing key's currency word for events that concern no currency (ISO 4217's code).
NO_CURRENCY: Final = "XXX"
#: The header that carries the writing transaction's id (xid8, as text).
XID_HEADER: Final = "transakt-xid"

_CURRENCY = re.compile(r"[A-Z]{3}")


def exchange_name(prefix: str) -> str:
    """The topic exchange the events go to."""
    return f"{prefix}.events"


def _currency(payload: Mapping[str, Any]) -> str | None:
    for key in ("transfer", "wallet"):  # transfer events; balance.changed before 0005
        part = payload.get(key)
        if isinstance(part, dict):
            currency = part.get("currency")
            if isinstance(currency, str) and _CURRENCY.fullmatch(currency):
                return currency
    return None


def routing_key(topic: str, payload: Mapping[str, Any]) -> str:
    """``<topic>.<currency>``, with ``XXX`` for an event that has no currency."""
    return f"{topic}.{_currency(payload) or NO_CURRENCY}"


def encode_event(event: StreamEvent) -> tuple[str, aio_pika.Message]:
    """The routing key and the message of one outbox event."""
    payload = orjson.loads(event.payload)
    currency = _currency(payload) if isinstance(payload, dict) else None
    body = orjson.dumps(
        {
            "event_id": event.event_id,
            "sequence": event.id,
            "topic": event.topic,
            "currency": currency,
            "created_at": event.created_at,
            # As stored, byte for byte: not decoded and encoded again.
            "payload": orjson.Fragment(event.payload),
        }
    )
    message = aio_pika.Message(
        body,
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=event.event_id,
        timestamp=event.created_at,
        type=event.topic,
        app_id="transakt",
        headers={XID_HEADER: str(event.xid)},
    )
    return f"{event.topic}.{currency or NO_CURRENCY}", message


def decode_event(body: bytes, headers: Mapping[str, Any]) -> OutboxEvent:
    """The ``OutboxEvent`` a message carries; ``ValueError`` when it is not one."""
    try:
        fields = orjson.loads(body)
        xid = headers[XID_HEADER]
        event = OutboxEvent(
            id=fields["sequence"],
            event_id=fields["event_id"],
            topic=fields["topic"],
            payload=fields["payload"],
            xid=int(xid.decode() if isinstance(xid, bytes) else xid),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise ValueError(f"not an outbox event message: {error!r}") from error
    if not (
        isinstance(event.id, int)
        and isinstance(event.event_id, str)
        and isinstance(event.topic, str)
        and isinstance(event.payload, dict)
    ):
        raise ValueError("not an outbox event message: a field has the wrong type")
    return event
