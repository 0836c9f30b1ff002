"""Prometheus metrics: one registry per process, and the collectors that read live parts.

Every process that answers ``GET /metrics`` builds one ``CollectorRegistry`` (``new_registry``),
never prometheus-client's global default one: tests run several nodes and banks in one process,
and each keeps its own series. Every component's figures come from a collector registered on it
whose ``collect()`` reads the component's attributes when scraped (plain integers the component
updates in place), or from real ``Counter``/``Histogram`` objects where a component counts
events itself (the HTTP front door). No I/O happens in a scrape, so it stays cheap under load,
and no exposition text is written by hand: ``/metrics`` answers ``generate_latest(registry)``.

Naming: counters end in ``_total`` (``CounterMetricFamily`` adds it), gauges are gauges, and
what varies within one figure (an entity kind, an outcome, a component) is a label.

This module imports nothing of Transakt's layers: what it reads is described by protocols.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Final, Protocol

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, UnknownMetricFamily
from prometheus_client.metrics_core import Metric

try:
    from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4 as _TEXT_0_0_4
except ImportError:  # prometheus-client < 0.22, where the latest text format is 0.0.4
    from prometheus_client import CONTENT_TYPE_LATEST as _TEXT_0_0_4

__all__ = [
    "CONTENT_TYPE",
    "Families",
    "LedgerCollector",
    "RuntimeCollector",
    "StartTimeCollector",
    "TasksCollector",
    "TrustCollector",
    "metric_name",
    "new_registry",
]

#: The content type of what ``generate_latest`` writes (the text format, version 0.0.4).
CONTENT_TYPE: Final[str] = _TEXT_0_0_4


def new_registry() -> CollectorRegistry:
    """A registry of the process's own (never the global default one).

    ``auto_describe``: a collector without ``describe()`` is asked for its families when it is
    registered, so two collectors exporting the same name fail at once, not at a scrape.
    """
    return CollectorRegistry(auto_describe=True)


def metric_name(key: str) -> str:
    """A snapshot key as a metric name part: anything but letters and digits becomes ``_``."""
    return "".join(c if c.isascii() and c.isalnum() else "_" for c in key)


class Families:
    """A collector around a function that returns metric families (read live at each scrape)."""

    def __init__(self, families: Callable[[], Iterable[Metric]]) -> None:
        self._families = families

    def __repr__(self) -> str:
        return f"<Families {getattr(self._families, '__qualname__', self._families)!r}>"

    def collect(self) -> Iterable[Metric]:
        """The families, as they stand now."""
        return self._families()


# -- the actor runtime ----------------------------------------------------------------------


class _RuntimeMetrics(Protocol):
    def snapshot(self) -> Mapping[str, float]: ...


class _ActorSystem(Protocol):
    @property
    def metrics(self) -> _RuntimeMetrics: ...


# Counters of ``RuntimeMetrics.snapshot()`` other than messages (those share one family).
_RUNTIME_COUNTERS: Final[Mapping[str, str]] = {
    "restarts": "Actor restarts after a crash.",
    "asks_timed_out": "Asks that timed out before a reply.",
    "dead_letters": "Messages sent to actors that had stopped.",
    "mailbox_full_rejections": "Messages refused because the mailbox was full.",
    "activations": "Entity activations.",
    "passivations": "Entity passivations (idle entities stopped).",
    "events_published": "Events published on the event bus.",
    "event_handler_errors": "Event handlers that raised.",
}
_RUNTIME_GAUGES: Final[Mapping[str, str]] = {
    "active_actors": "Live actor instances: spawned actors and activated entities.",
    "mailbox_depth": "Messages queued now, over all mailboxes.",
}
_MESSAGE_OUTCOMES: Final[Mapping[str, str]] = {
    "messages_processed": "processed",
    "messages_failed": "failed",
}
_ENTITIES: Final = "active_entities"


class RuntimeCollector:
    """The actor system's ``metrics.snapshot()``: counters, gauges, entities by kind."""

    def __init__(self, system: _ActorSystem) -> None:
        self._system = system

    def __repr__(self) -> str:
        return f"<RuntimeCollector {self._system!r}>"

    def collect(self) -> Iterator[Metric]:
        """``transakt_runtime_*``; kinds and outcomes are labels, counters end in ``_total``."""
        snapshot = self._system.metrics.snapshot()
        messages = CounterMetricFamily(
            "transakt_runtime_messages",
            "Actor messages handled, by outcome (a deferred reply that fails later counts in"
            " both).",
            labels=("outcome",),
        )
        entities = GaugeMetricFamily(
            "transakt_runtime_active_entities",
            "Activated entities, by kind.",
            labels=("kind",),
        )
        others: list[Metric] = []
        for key, value in snapshot.items():
            if key in _MESSAGE_OUTCOMES:
                messages.add_metric((_MESSAGE_OUTCOMES[key],), value)
            elif key.startswith(_ENTITIES + "."):
                entities.add_metric((key.removeprefix(_ENTITIES + "."),), value)
            elif key == _ENTITIES:
                continue  # the sum over kinds: sum(transakt_runtime_active_entities)
            elif key in _RUNTIME_COUNTERS:
                others.append(
                    CounterMetricFamily(
                        f"transakt_runtime_{key}", _RUNTIME_COUNTERS[key], value=value
                    )
                )
            elif key in _RUNTIME_GAUGES:
                others.append(
                    GaugeMetricFamily(f"transakt_runtime_{key}", _RUNTIME_GAUGES[key], value=value)
                )
            else:  # a figure the runtime gained since: exported, but not typed by guesswork
                others.append(
                    UnknownMetricFamily(
                        f"transakt_runtime_{metric_name(key)}",
                        f"actor runtime: {key}",
                        value=value,
                    )
                )
        yield messages
        yield entities
        yield from others


# -- the ledger writer and the node -----------------------------------------------------------


class _LedgerWriter(Protocol):
    @property
    def batches(self) -> int: ...
    @property
    def operations(self) -> int: ...
    @property
    def failures(self) -> int: ...
    @property
    def largest_batch(self) -> int: ...
    @property
    def commit_seconds(self) -> float: ...
    @property
    def queued(self) -> int: ...


class LedgerCollector:
    """The group-commit writer's counters and its queue."""

    def __init__(self, writer: _LedgerWriter) -> None:
        self._writer = writer

    def __repr__(self) -> str:
        return f"<LedgerCollector {self._writer!r}>"

    def collect(self) -> Iterator[Metric]:
        """``transakt_ledger_*``."""
        writer = self._writer
        yield CounterMetricFamily(
            "transakt_ledger_batches", "Batches committed.", value=writer.batches
        )
        yield CounterMetricFamily(
            "transakt_ledger_operations", "Ledger operations committed.", value=writer.operations
        )
        yield CounterMetricFamily(
            "transakt_ledger_failures", "Batch commits that failed.", value=writer.failures
        )
        yield CounterMetricFamily(
            "transakt_ledger_commit_seconds",
            "Time spent committing batches.",
            value=writer.commit_seconds,
        )
        yield GaugeMetricFamily(
            "transakt_ledger_largest_batch",
            "The largest batch committed so far.",
            value=writer.largest_batch,
        )
        yield GaugeMetricFamily(
            "transakt_ledger_queued", "Operations waiting for a batch.", value=writer.queued
        )


class StartTimeCollector:
    """When the process's node started (Unix seconds), as Prometheus' process collector does."""

    def __init__(self, started_at: float) -> None:
        self._started_at = started_at

    def __repr__(self) -> str:
        return f"<StartTimeCollector {self._started_at}>"

    def collect(self) -> Iterator[Metric]:
        """``transakt_node_start_time_seconds``."""
        yield GaugeMetricFamily(
            "transakt_node_start_time_seconds",
            "When the node started, in seconds since the Unix epoch.",
            value=self._started_at,
        )


# -- trust: throttles, sessions, idempotency --------------------------------------------------


class _Throttle(Protocol):
    @property
    def refused(self) -> int: ...


class _Sessions(Protocol):
    @property
    def reloads(self) -> int: ...
    @property
    def revoked_count(self) -> int: ...


class _Idempotency(Protocol):
    @property
    def running(self) -> int: ...


class TrustCollector:
    """Throttle refusals, revoked tokens held, Idempotency-Keys being answered now."""

    def __init__(self, throttle: _Throttle, sessions: _Sessions, idempotency: _Idempotency) -> None:
        self._throttle = throttle
        self._sessions = sessions
        self._idempotency = idempotency

    def __repr__(self) -> str:
        return f"<TrustCollector {self._throttle!r} {self._sessions!r} {self._idempotency!r}>"

    def collect(self) -> Iterator[Metric]:
        """``transakt_throttle_*``, ``transakt_sessions_*``, ``transakt_idempotency_*``."""
        yield CounterMetricFamily(
            "transakt_throttle_refused",
            "Attempts refused by a throttle rule (logins, sign-ups, look-ups, codes...).",
            value=self._throttle.refused,
        )
        sessions = self._sessions
        yield GaugeMetricFamily(
            "transakt_sessions_revoked_tokens",
            "Logged-out tokens held in memory until they expire.",
            value=sessions.revoked_count,
        )
        yield CounterMetricFamily(
            "transakt_sessions_reloads",
            "Full reloads of revoked sessions (after a lost connection).",
            value=sessions.reloads,
        )
        yield GaugeMetricFamily(
            "transakt_idempotency_in_flight",
            "Requests under an Idempotency-Key being answered on this node now.",
            value=self._idempotency.running,
        )


# -- supervised tasks -------------------------------------------------------------------------

# ``TaskSupervisor.snapshot()`` keys: counters, then the one gauge.
_TASK_COUNTERS: Final[Mapping[str, str]] = {
    "spawned": "Supervised tasks started.",
    "restarts": "Supervised tasks restarted after a crash.",
    "crashes": "Supervised task crashes.",
    "failed": "Supervised tasks that gave up after too many restarts.",
}
_TASK_GAUGES: Final[Mapping[str, str]] = {
    "running": "Supervised tasks not ended yet (running, restarting or stopping).",
}


_LabelledFamily = CounterMetricFamily | GaugeMetricFamily | UnknownMetricFamily


class TasksCollector:
    """Each component's ``tasks.snapshot()`` (its ``TaskSupervisor``), labelled by component.

    Components are looked at when scraped: one that has no ``tasks`` supervisor (yet) is
    skipped, so a component that gains one shows up without a change here.
    """

    def __init__(self, components: Mapping[str, object]) -> None:
        self._components = dict(components)

    def __repr__(self) -> str:
        return f"<TasksCollector {sorted(self._components)}>"

    def snapshots(self) -> Iterator[tuple[str, Mapping[str, float]]]:
        """(component, snapshot) of each component with a supervisor."""
        for component, part in self._components.items():
            tasks = getattr(part, "tasks", None)
            snapshot = getattr(tasks, "snapshot", None)
            if callable(snapshot):
                values = snapshot()
                if isinstance(values, Mapping):
                    yield component, values

    def collect(self) -> Iterator[Metric]:
        """``transakt_tasks_*{component=...}``."""
        families: dict[str, _LabelledFamily] = {}
        for key, help_text in _TASK_COUNTERS.items():
            families[key] = CounterMetricFamily(
                f"transakt_tasks_{key}", help_text, labels=("component",)
            )
        for key, help_text in _TASK_GAUGES.items():
            families[key] = GaugeMetricFamily(
                f"transakt_tasks_{key}", help_text, labels=("component",)
            )
        for component, values in self.snapshots():
            for key, value in values.items():
                family = families.get(key)
                if family is None:
                    family = families[key] = UnknownMetricFamily(
                        f"transakt_tasks_{metric_name(key)}",
                        f"supervised tasks: {key}",
                        labels=("component",),
                    )
                family.add_metric((component,), value)
        yield from families.values()
