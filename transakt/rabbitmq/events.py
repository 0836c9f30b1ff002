"""The wallet's events across processes: each committed outbox event published once to RabbitMQ.

``EventPublisher`` (one active in the whole cluster, ``event_publisher``) publishes every
committed outbox event to the durable topic exchange ``<prefix>.events``; ``EventSubscriber``
(one per process, ``event_subscriber``) feeds the process's ``EventBus`` from that exchange, as
``OutboxRelay`` does from PostgreSQL. Outside services bind queues of their own to the same
exchange; ``event_format`` says what they receive.
"""

from transakt.rabbitmq.event_format import (
    NO_CURRENCY,
    XID_HEADER,
    decode_event,
    encode_event,
    exchange_name,
    routing_key,
)
from transakt.rabbitmq.event_publisher import EventPublisher
from transakt.rabbitmq.event_subscriber import EventSubscriber

__all__ = [
    "NO_CURRENCY",
    "XID_HEADER",
    "EventPublisher",
    "EventSubscriber",
    "decode_event",
    "encode_event",
    "exchange_name",
    "routing_key",
]
