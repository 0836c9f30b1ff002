"""Restart policy: how often a crashing actor is restarted, and how long it waits in between."""

from __future__ import annotations

import random
from dataclasses import dataclass

from transakt.runtime._typing import OnLimit

__all__ = ["RestartPolicy"]

# 2.0 ** 60 already dwarfs any sane max_backoff; capping the exponent avoids OverflowError.
_MAX_EXPONENT = 60


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """Exponential-backoff restarts, with a limit of ``max_restarts`` within ``within`` seconds."""

    max_restarts: int = 10
    within: float = 60.0
    min_backoff: float = 0.05
    max_backoff: float = 5.0
    jitter: float = 0.2
    on_limit: OnLimit = "stop"

    def __post_init__(self) -> None:
        if self.max_restarts < 0:
            raise ValueError("max_restarts must be >= 0")
        if self.within <= 0:
            raise ValueError("within must be > 0")
        if self.min_backoff < 0 or self.max_backoff < self.min_backoff:
            raise ValueError("need 0 <= min_backoff <= max_backoff")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be within [0, 1]")
        if self.on_limit not in ("stop", "escalate"):
            raise ValueError("on_limit must be 'stop' or 'escalate'")

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Delay before consecutive restart number ``attempt`` (0 for the first one)."""
        base = min(self.max_backoff, self.min_backoff * 2.0 ** min(attempt, _MAX_EXPONENT))
        if self.jitter == 0 or base == 0:
            return base
        return base * rng.uniform(1.0 - self.jitter, 1.0 + self.jitter)
