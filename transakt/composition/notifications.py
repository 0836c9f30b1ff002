"""The event feed, live hub and mailers of a process, on a pool of their own.

A wallet node runs them with the live hub (and the mailers unless ``mail_in_process`` is off);
``transakt worker`` runs them with mailers only. Both share the database and nothing else.

Where the process's events come from: alone (no ``TRANSAKT_RABBITMQ_URL``), an ``OutboxRelay``
reads every commit back from PostgreSQL; in a cluster, every process runs an
``EventPublisher`` (one of them, the leader, publishes each committed event once to the
``<prefix>.events`` exchange) and an ``EventSubscriber`` that feeds its bus from there.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from transakt.actors.email import EmailActor, MailConfig
from transakt.config import Settings
from transakt.events.live import CLOSE_SERVICE_RESTART, LiveHub
from transakt.events.mail import MailTransport, transport_from_settings
from transakt.events.relay import OutboxRelay
from transakt.rabbitmq.events import EventPublisher, EventSubscriber
from transakt.rabbitmq.metrics import stream_metrics
from transakt.runtime import ActorRef, ActorSystem, RestartPolicy
from transakt.storage.pool import create_pool

__all__ = [
    "Notifications",
    "mail_config",
    "open_notifications",
]

log = logging.getLogger("transakt.notifications")

# How live websockets are closed when events may have been missed: reconnect, fresh snapshot.
_RESNAPSHOT = (CLOSE_SERVICE_RESTART, "events may have been missed: reconnect for a fresh view")


@dataclass(slots=True)
class Notifications:
    """The running parts: a relay, or a publisher and a subscriber (in a cluster); a hub on
    wallet nodes; mailers where mail is sent."""

    relay: OutboxRelay | None = None
    publisher: EventPublisher | None = None
    subscriber: EventSubscriber | None = None
    live: LiveHub | None = None
    mailers: list[ActorRef] = field(default_factory=list)
    transport: MailTransport | None = None

    def metrics(self) -> list[Metric]:
        """The relay's (or stream's) and the live hub's figures as metric families, read now."""
        families: list[Metric] = []
        if self.relay is not None:
            families += _relay_metrics(self.relay)
        if self.publisher is not None or self.subscriber is not None:
            families += stream_metrics(self.publisher, self.subscriber)
        live = self.live
        if live is not None:
            families += _live_metrics(live)
        return families


def _relay_metrics(relay: OutboxRelay) -> list[Metric]:
    families: list[Metric] = [
        CounterMetricFamily(
            "transakt_outbox_published", "Events published.", value=relay.published
        ),
        CounterMetricFamily(
            "transakt_outbox_caught_up",
            "Events published by a catch-up or poll rather than a notification.",
            value=relay.caught_up,
        ),
        CounterMetricFamily(
            "transakt_outbox_notifications",
            "Commit notifications heard.",
            value=relay.notifications,
        ),
        CounterMetricFamily(
            "transakt_outbox_unread",
            "Commit notifications not read back because nobody on this process listened.",
            value=relay.unread,
        ),
        CounterMetricFamily(
            "transakt_outbox_pruned", "Events past retention deleted.", value=relay.pruned
        ),
    ]
    return families


def _live_metrics(live: LiveHub) -> list[Metric]:
    return [
        GaugeMetricFamily(
            "transakt_live_connections", "Open live websockets.", value=live.connections
        ),
        CounterMetricFamily(
            "transakt_live_dropped_slow",
            "Live websockets dropped as too slow.",
            value=live.dropped_slow,
        ),
        CounterMetricFamily("transakt_live_messages", "Live messages queued.", value=live.routed),
        CounterMetricFamily(
            "transakt_live_replays",
            "Events the live hub had routed already and dropped.",
            value=live.replays,
        ),
        CounterMetricFamily(
            "transakt_live_refused",
            "Live websockets refused: the user had too many open.",
            value=live.refused,
        ),
    ]


def mail_config(settings: Settings) -> MailConfig:
    """The EmailActor's configuration from the settings."""
    return MailConfig(
        sender=settings.mail.sender,
        batch_size=settings.mail.batch_size,
        lease_seconds=settings.mail.lease_seconds,
        retry_min_seconds=settings.mail.retry_min_seconds,
        retry_max_seconds=settings.mail.retry_max_seconds,
        poll_seconds=settings.outbox.poll_seconds,
    )


@asynccontextmanager
async def open_notifications(
    settings: Settings,
    database_url: str,
    system: ActorSystem,
    *,
    live: bool,
    mail: bool,
    transport: MailTransport | None = None,
) -> AsyncIterator[Notifications]:
    """Start the event feed (relay, or publisher and subscriber), and the hub and mailers when
    asked, on a pool of their own; stop them and close it in reverse order."""
    async with AsyncExitStack() as stack:
        # Connections of their own: relaying and mailing never wait for (or hold) one that an
        # HTTP request needs, and they show in pg_stat_activity under their own name.
        pool = await create_pool(
            database_url,
            min_size=1,
            max_size=(settings.mail.workers if mail else 0) + 1,
            application_name="transakt-notifications",
        )
        stack.push_async_callback(pool.close)
        hub = (
            LiveHub(
                system.events,
                queue_size=settings.live.queue_size,
                max_per_user=settings.live.max_connections_per_user,
            )
            if live
            else None
        )
        if hub is not None:
            stack.callback(hub.close)
        notifications = Notifications(live=hub)
        if settings.rabbitmq.url:
            notifications.publisher = EventPublisher(
                database_url,
                settings.rabbitmq.url,
                prefix=settings.rabbitmq.prefix,
                poll_seconds=settings.outbox.poll_seconds,
                retention_seconds=settings.outbox.retention_seconds,
            )
            notifications.subscriber = EventSubscriber(
                settings.rabbitmq.url,
                system.events,
                prefix=settings.rabbitmq.prefix,
                # Events published while the connection was down are not queued for this
                # process: its live clients reconnect for a fresh snapshot (mailers poll).
                on_reconnect=(lambda: hub.close_all(*_RESNAPSHOT)) if hub is not None else None,
                # Consumed only while a websocket or a mailer on this process listens.
                wanted=system.events.has_subscribers,
            )
        else:
            notifications.relay = OutboxRelay(
                database_url,
                pool,
                system.events,
                poll_seconds=settings.outbox.poll_seconds,
                retention_seconds=settings.outbox.retention_seconds,
            )
        if mail:
            sink = notifications.transport = transport or transport_from_settings(settings)
            config = mail_config(settings)
            # A mailer that keeps crashing (the database is gone) backs off up to a minute and
            # keeps trying (backing off, it cannot reach 100 restarts in 10 minutes): mail waits
            # in PostgreSQL, so giving up would only delay it more.
            policy = RestartPolicy(
                max_restarts=100, within=600.0, min_backoff=0.5, max_backoff=60.0
            )
            for index in range(settings.mail.workers):
                ref = system.spawn(
                    lambda: EmailActor(pool, sink, config),
                    name=f"email-{index}",
                    policy=policy,
                    mailbox_size=16,
                )
                notifications.mailers.append(ref)
                stack.push_async_callback(ref.stop)
            log.info("mail goes to %s", sink.describe())
        # Started last, stopped first: nothing is published to parts that have gone.
        for feed in (notifications.relay, notifications.subscriber, notifications.publisher):
            if feed is not None:
                await feed.start()
                stack.push_async_callback(feed.stop)
        yield notifications
