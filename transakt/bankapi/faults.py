"""The sandbox bank's fault knobs as the admin API shows them: slow, failing, declining or down."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from transakt.errors import ValidationFailed

__all__ = ["MAX_LATENCY_MS", "Faults"]

MAX_LATENCY_MS = 600_000


@dataclass(frozen=True, slots=True)
class Faults:
    """What the bank does wrong on purpose; the default is nothing."""

    latency_ms: int = 0
    failure_rate: float = 0.0
    refuse_all: bool = False
    seed: int | None = None
    # Up, but refusing every new money movement (stored as rejected, reason "declined"): the
    # wallet voids it, and the breaker stays closed, since the bank did answer.
    decline_all: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.latency_ms, bool) or not isinstance(self.latency_ms, int):
            raise ValidationFailed("latency_ms must be an integer", field="latency_ms")
        if not 0 <= self.latency_ms <= MAX_LATENCY_MS:
            raise ValidationFailed(
                f"latency_ms must be between 0 and {MAX_LATENCY_MS}", field="latency_ms"
            )
        rate = self.failure_rate
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
            raise ValidationFailed(
                "failure_rate must be a number from 0 to 1", field="failure_rate"
            )
        if not isinstance(self.refuse_all, bool):
            raise ValidationFailed("refuse_all must be true or false", field="refuse_all")
        if not isinstance(self.decline_all, bool):
            raise ValidationFailed("decline_all must be true or false", field="decline_all")
        if self.seed is not None and (
            isinstance(self.seed, bool) or not isinstance(self.seed, int)
        ):
            raise ValidationFailed("seed must be an integer or null", field="seed")

    def to_json(self) -> dict[str, Any]:
        """The shape of GET /admin/faults."""
        return {
            "latency_ms": self.latency_ms,
            "failure_rate": self.failure_rate,
            "refuse_all": self.refuse_all,
            "seed": self.seed,
            "decline_all": self.decline_all,
        }

    def updated(self, body: Any) -> Faults:
        """A copy with the fields a PUT /admin/faults body names; others keep their value."""
        if not isinstance(body, dict):
            raise ValidationFailed("the body must be a JSON object")
        unknown = set(body) - {"latency_ms", "failure_rate", "refuse_all", "seed", "decline_all"}
        if unknown:
            raise ValidationFailed(
                f"unknown fault fields: {sorted(unknown)}", fields=sorted(unknown)
            )
        return replace(self, **body)
