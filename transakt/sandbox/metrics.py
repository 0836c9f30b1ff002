"""The bank's counters and their Prometheus text rendering for GET /metrics."""

from __future__ import annotations

from collections import Counter

from transakt.sandbox.cache import AccountDirectory
from transakt.sandbox.faults import FaultInjector

__all__ = ["BankMetrics"]


def _labels(**labels: str) -> str:
    # Label values are the bank's own fixed words (statuses, reasons), never user input.
    return "{" + ",".join(f'{key}="{value}"' for key, value in labels.items()) + "}"


class BankMetrics:
    """Counts what the bank answered; cache and fault figures are read live when rendered."""

    def __init__(self) -> None:
        self.responses: Counter[int] = Counter()
        self.transfers: Counter[tuple[str, str]] = Counter()
        self.verifications: Counter[str] = Counter()

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

    def render(self, directory: AccountDirectory | None, faults: FaultInjector) -> str:
        """Everything in the Prometheus text exposition format (version 0.0.4)."""
        lines: list[str] = []

        def metric(name: str, kind: str, doc: str, samples: list[tuple[str, float]]) -> None:
            lines.append(f"# HELP {name} {doc}")
            lines.append(f"# TYPE {name} {kind}")
            lines.extend(f"{name}{labels} {value:g}" for labels, value in samples)

        hits = directory.hits if directory else 0
        misses = directory.misses if directory else 0
        size = directory.size if directory else 0
        metric(
            "bank_account_cache_hits_total",
            "counter",
            "Account look-ups answered from the LRU cache.",
            [("", hits)],
        )
        metric(
            "bank_account_cache_misses_total",
            "counter",
            "Account look-ups that read the database.",
            [("", misses)],
        )
        metric("bank_account_cache_size", "gauge", "Account identities cached.", [("", size)])
        metric(
            "bank_http_responses_total",
            "counter",
            "HTTP answers by status code.",
            [(_labels(status=str(code)), n) for code, n in sorted(self.responses.items())],
        )
        metric(
            "bank_transfers_total",
            "counter",
            "Transfers stored, by outcome (replays excluded).",
            [
                (_labels(status=status, reason=reason), n)
                for (status, reason), n in sorted(self.transfers.items())
            ],
        )
        metric(
            "bank_account_verifications_total",
            "counter",
            "Account verifications started (replays excluded) and confirmations by outcome.",
            [(_labels(event=event), n) for event, n in sorted(self.verifications.items())],
        )
        metric(
            "bank_faults_injected_total",
            "counter",
            "Requests delayed, failed or refused on purpose.",
            [
                (_labels(kind="latency"), faults.delayed_total),
                (_labels(kind="failure"), faults.failed_total),
                (_labels(kind="refuse_all"), faults.refused_total),
            ],
        )
        return "\n".join(lines) + "\n"
