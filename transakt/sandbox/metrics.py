"""The bank's counters, exported through its own Prometheus registry for GET /metrics."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from transakt.observability import new_registry
from transakt.sandbox.cache import AccountDirectory
from transakt.sandbox.faults import FaultInjector

__all__ = ["BankMetrics"]


class BankMetrics:
    """Counts what the bank answered; cache and fault figures are read live when scraped.

    ``registry`` is the bank process's one registry; its collector reads these counters and
    the parts given to ``watch`` (the account cache only exists once the app has started).
    """

    def __init__(self) -> None:
        self.responses: Counter[int] = Counter()
        self.transfers: Counter[tuple[str, str]] = Counter()
        self.verifications: Counter[str] = Counter()
        self._directory: AccountDirectory | None = None
        self._faults: FaultInjector | None = None
        self.registry = new_registry()
        self.registry.register(self)

    def __repr__(self) -> str:
        return f"<BankMetrics responses={sum(self.responses.values())}>"

    def count_response(self, status: int) -> None:
        """One HTTP answer with this status."""
        self.responses[status] += 1

    def count_transfer(self, status: str, reason: str | None) -> None:
        """One transfer newly applied or refused (replays are not counted again)."""
        self.transfers[status, reason or ""] += 1

    def count_verification(self, event: str) -> None:
        """One account verification started, or one confirmation and the state it left."""
        self.verifications[event] += 1

    def watch(self, directory: AccountDirectory | None, faults: FaultInjector) -> None:
        """Read these parts' figures from now on (the app's cache, once open, and faults)."""
        self._directory = directory
        self._faults = faults

    def collect(self) -> Iterator[Metric]:
        """``bank_*``: the collector registered on ``registry``."""
        directory = self._directory
        yield CounterMetricFamily(
            "bank_account_cache_hits",
            "Account look-ups answered from the LRU cache.",
            value=directory.hits if directory else 0,
        )
        yield CounterMetricFamily(
            "bank_account_cache_misses",
            "Account look-ups that read the database.",
            value=directory.misses if directory else 0,
        )
        yield GaugeMetricFamily(
            "bank_account_cache_size",
            "Account identities cached.",
            value=directory.size if directory else 0,
        )
        responses = CounterMetricFamily(
            "bank_http_responses", "HTTP answers by status code.", labels=("status",)
        )
        for code, count in sorted(self.responses.items()):
            responses.add_metric((str(code),), count)
        yield responses
        transfers = CounterMetricFamily(
            "bank_transfers",
            "Transfers stored, by outcome (replays excluded).",
            labels=("status", "reason"),
        )
        for (status, reason), count in sorted(self.transfers.items()):
            transfers.add_metric((status, reason), count)
        yield transfers
        verifications = CounterMetricFamily(
            "bank_account_verifications",
            "Account verifications started (replays excluded) and confirmations by outcome.",
            labels=("event",),
        )
        for event, count in sorted(self.verifications.items()):
            verifications.add_metric((event,), count)
        yield verifications
        faults = CounterMetricFamily(
            "bank_faults_injected",
            "Requests delayed, failed or refused on purpose.",
            labels=("kind",),
        )
        injector = self._faults
        if injector is not None:
            faults.add_metric(("latency",), injector.delayed_total)
            faults.add_metric(("failure",), injector.failed_total)
            faults.add_metric(("refuse_all",), injector.refused_total)
        yield faults
