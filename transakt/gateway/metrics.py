"""The bank gateway's Prometheus series: breaker state and counters, buffer, outcomes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from transakt.gateway.breaker import BreakerState

if TYPE_CHECKING:
    from transakt.gateway.gateway import BankGateway

__all__ = ["GatewayCollector"]


class GatewayCollector:
    """Reads one gateway's breaker and counters when scraped (no call to Redis or the bank:
    the buffer depth is the last one the gateway saw)."""

    def __init__(self, gateway: BankGateway) -> None:
        self._gateway = gateway

    def __repr__(self) -> str:
        return f"<GatewayCollector {self._gateway!r}>"

    def collect(self) -> Iterator[Metric]:
        """``transakt_bank_*``."""
        gateway = self._gateway
        snapshot = gateway.breaker.snapshot()
        state = GaugeMetricFamily(
            "transakt_bank_breaker_state",
            "1 for the bank circuit breaker's current state, 0 for the others.",
            labels=("state",),
        )
        for each in BreakerState:
            state.add_metric((each.value,), int(snapshot.state is each))
        yield state
        for name, help_text, value in (
            ("opened", "Times the bank circuit breaker opened.", snapshot.opened_total),
            ("rejected", "Bank calls the breaker refused unmade.", snapshot.rejected_total),
            ("failures", "Bank calls that failed.", snapshot.failures_total),
            ("successes", "Bank calls the bank answered.", snapshot.successes_total),
        ):
            yield CounterMetricFamily(f"transakt_bank_breaker_{name}", help_text, value=value)
        yield GaugeMetricFamily(
            "transakt_bank_buffer_depth",
            "Bank requests in the buffer (as last read).",
            value=gateway.buffered,
        )
        yield GaugeMetricFamily(
            "transakt_bank_in_flight", "Bank requests under way.", value=gateway.in_flight
        )
        requests = CounterMetricFamily(
            "transakt_bank_requests",
            "Bank requests by what became of them.",
            labels=("outcome",),
        )
        for outcome, count in (
            ("posted", gateway.posted),
            ("voided", gateway.voided),
            ("deferred", gateway.deferred),
            ("duplicate", gateway.duplicates),
        ):
            requests.add_metric((outcome,), count)
        yield requests
