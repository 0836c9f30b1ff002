"""Counters and gauges of one actor system, cheap enough to update on every message."""

from __future__ import annotations

__all__ = ["RuntimeMetrics"]

_COUNTERS = (
    "messages_processed",
    "messages_failed",
    "restarts",
    "asks_timed_out",
    "dead_letters",
    "mailbox_full_rejections",
    "activations",
    "passivations",
    "events_published",
    "event_handler_errors",
)


class RuntimeMetrics:
    """Plain integer fields updated in place by the runtime; ``snapshot()`` flattens them."""

    __slots__ = (*_COUNTERS, "active_actors", "active_entities_by_kind", "mailbox_depth")

    def __init__(self) -> None:
        self.messages_processed = 0
        self.messages_failed = 0
        self.restarts = 0
        self.asks_timed_out = 0
        self.dead_letters = 0
        self.mailbox_full_rejections = 0
        self.activations = 0
        self.passivations = 0
        self.events_published = 0
        self.event_handler_errors = 0
        #: Live actor instances: spawned actors plus activated entities.
        self.active_actors = 0
        #: Messages queued right now, over all mailboxes.
        self.mailbox_depth = 0
        self.active_entities_by_kind: dict[str, int] = {}

    @property
    def active_entities(self) -> int:
        """Activated entities over all kinds."""
        return sum(self.active_entities_by_kind.values())

    def snapshot(self) -> dict[str, float]:
        """Flat ``name -> value``; per-kind gauges are named ``active_entities.<kind>``."""
        values: dict[str, float] = {name: getattr(self, name) for name in _COUNTERS}
        values["active_actors"] = self.active_actors
        values["mailbox_depth"] = self.mailbox_depth
        values["active_entities"] = self.active_entities
        for kind, count in self.active_entities_by_kind.items():
            values[f"active_entities.{kind}"] = count
        return values

    def __repr__(self) -> str:
        return (
            f"<RuntimeMetrics processed={self.messages_processed} failed={self.messages_failed}"
            f" restarts={self.restarts} actors={self.active_actors}"
            f" mailbox_depth={self.mailbox_depth}>"
        )
