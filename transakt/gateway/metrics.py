"""The bank gateway's Prometheus series: breaker state and counters, buffer, outcomes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from transakt.gateway.breaker import BreakerState

if TYPE_CHECKING:
    from transakt.gateway.gateway import BankGateway

__all__ = ["gateway_metrics"]


def gateway_metrics(gateway: BankGateway) -> list[str]:
    """Prometheus text lines for one gateway."""
    snapshot = gateway.breaker.snapshot()
    lines = _family(
        "transakt_bank_breaker_state",
        "gauge",
        "1 for the bank circuit breaker's current state",
        {f'state="{state.value}"': int(snapshot.state is state) for state in BreakerState},
    )
    for name, kind, help_text, value in (
        ("breaker_opened_total", "counter", "times the breaker opened", snapshot.opened_total),
        ("breaker_rejected_total", "counter", "calls refused unmade", snapshot.rejected_total),
        ("breaker_failures_total", "counter", "bank calls failed", snapshot.failures_total),
        ("breaker_successes_total", "counter", "bank calls answered", snapshot.successes_total),
        ("buffer_depth", "gauge", "bank requests in the buffer", gateway.buffered),
        ("in_flight", "gauge", "bank requests under way", gateway.in_flight),
    ):
        lines += _family(f"transakt_bank_{name}", kind, help_text, {"": value})
    outcomes = {
        "posted": gateway.posted,
        "voided": gateway.voided,
        "deferred": gateway.deferred,
        "duplicate": gateway.duplicates,
    }
    lines += _family(
        "transakt_bank_requests_total",
        "counter",
        "bank requests by what became of them",
        {f'outcome="{outcome}"': count for outcome, count in outcomes.items()},
    )
    return lines


def _family(name: str, kind: str, help_text: str, samples: dict[str, float]) -> list[str]:
    """One metric family in Prometheus text: HELP, TYPE, then a sample per label set."""
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    lines += [
        f"{name}{{{labels}}} {value}" if labels else f"{name} {value}"
        for labels, value in samples.items()
    ]
    return lines
