"""Events out of the ledger: outbox relay, live hub (websockets), mail planning and sending."""

from transakt.events.live import LiveHub
from transakt.events.relay import OutboxRelay

__all__ = ["LiveHub", "OutboxRelay"]
