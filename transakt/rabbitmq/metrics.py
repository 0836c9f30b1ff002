"""The cluster transport's Prometheus series: shards owned, asks, hand-overs, redeliveries."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

if TYPE_CHECKING:
    from transakt.rabbitmq.event_publisher import EventPublisher
    from transakt.rabbitmq.event_subscriber import EventSubscriber
    from transakt.rabbitmq.transport import RabbitTransport

__all__ = ["ClusterCollector", "stream_metrics"]


class ClusterCollector:
    """Reads one transport's counters when scraped (nothing is done per message)."""

    def __init__(self, transport: RabbitTransport) -> None:
        self._transport = transport

    def __repr__(self) -> str:
        return f"<ClusterCollector {self._transport!r}>"

    def collect(self) -> Iterator[Metric]:
        """``transakt_cluster_*``."""
        transport = self._transport
        stats = transport.stats
        outbound = transport.outbound
        yield GaugeMetricFamily(
            "transakt_cluster_connected",
            "1 while the node is connected to the message broker.",
            value=int(transport.connected),
        )
        yield GaugeMetricFamily(
            "transakt_cluster_shards_owned",
            "Shards this node is the active consumer of (as it knows from deliveries).",
            value=transport.shards_owned,
        )
        yield GaugeMetricFamily(
            "transakt_cluster_asks_in_flight",
            "Asks sent to other nodes and not answered yet.",
            value=transport.in_flight,
        )
        for name, help_text, value in (
            ("asks_sent", "Asks sent to entities or actors of other nodes.", stats.asks_sent),
            ("tells_sent", "Tells sent to other nodes.", stats.tells_sent),
            ("asks_served", "Asks from the broker answered by this node.", stats.asks_served),
            ("redeliveries", "Deliveries the broker marked redelivered.", stats.redeliveries),
            (
                "shards_gained",
                "Shards this node became the owner of (hand-overs in).",
                stats.shards_gained,
            ),
            ("shards_lost", "Shards this node stopped owning (hand-overs out).", stats.shards_lost),
            (
                "messages_published",
                "Broker messages published (each a batch).",
                outbound.messages,
            ),
            ("frames_published", "Commands, answers and events published.", outbound.frames),
            ("publish_failures", "Batches the broker did not take.", outbound.failures),
            ("unreachable", "Probes that found a peer's queue gone.", stats.returned),
            ("disconnects", "Times the connection to the broker was lost.", stats.disconnects),
            (
                "shards_handed_over",
                "Shards given to the next node in line to keep the owners even.",
                transport.ownership.handed_over,
            ),
        ):
            yield CounterMetricFamily(f"transakt_cluster_{name}", help_text, value=value)
        decided = CounterMetricFamily(
            "transakt_cluster_entity_messages",
            "Messages decided by this node's entities, by shard (fast path or delivered).",
            labels=("shard",),
        )
        for shard, count in enumerate(stats.by_shard):
            if count:
                decided.add_metric((str(shard),), count)
        yield decided


def stream_metrics(
    publisher: EventPublisher | None, subscriber: EventSubscriber | None
) -> list[Metric]:
    """``transakt_events_*``: the event stream's publisher (leader or not) and subscriber."""
    families: list[Metric] = []
    if publisher is not None:
        families.append(
            GaugeMetricFamily(
                "transakt_events_leader",
                "1 while this process's publisher is the cluster's event publisher.",
                value=int(publisher.leader),
            )
        )
        for name, help_text, value in (
            ("published", "Events the broker confirmed (repeats included).", publisher.published),
            (
                "republished",
                "Events sent again after a crash or a failed publish.",
                publisher.republished,
            ),
            (
                "held_back",
                "Reads that found events waiting for an older transaction.",
                publisher.held_back,
            ),
            (
                "publish_failures",
                "Batches the broker did not confirm (retried).",
                publisher.publish_failures,
            ),
            ("takeovers", "Times this publisher became the leader.", publisher.takeovers),
            ("pruned", "Published events past retention deleted.", publisher.pruned),
        ):
            families.append(CounterMetricFamily(f"transakt_events_{name}", help_text, value=value))
    if subscriber is not None:
        for name, help_text, value in (
            ("received", "Event messages received from the broker.", subscriber.received),
            ("delivered", "Events put on this process's bus.", subscriber.delivered),
            ("replays", "Events received again and dropped.", subscriber.replays),
            ("malformed", "Messages that were not events.", subscriber.malformed),
            ("reconnects", "Times the subscriber's connection came back.", subscriber.reconnects),
        ):
            families.append(
                CounterMetricFamily(f"transakt_events_subscriber_{name}", help_text, value=value)
            )
    return families
