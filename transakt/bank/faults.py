"""Fault knobs for demos and tests: slow answers, a share of 503s, or a bank that is down."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from transakt.bank.constants import API_PREFIX
from transakt.errors import BankUnavailable, ValidationFailed

__all__ = ["FaultInjector", "Faults"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

MAX_LATENCY_MS = 600_000


@dataclass(frozen=True, slots=True)
class Faults:
    """What the bank does wrong on purpose; the default is nothing."""

    latency_ms: int = 0
    failure_rate: float = 0.0
    refuse_all: bool = False
    seed: int | None = None

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
        }

    def updated(self, body: Any) -> Faults:
        """A copy with the fields a PUT /admin/faults body names; others keep their value."""
        if not isinstance(body, dict):
            raise ValidationFailed("the body must be a JSON object")
        unknown = set(body) - {"latency_ms", "failure_rate", "refuse_all", "seed"}
        if unknown:
            raise ValidationFailed(
                f"unknown fault fields: {sorted(unknown)}", fields=sorted(unknown)
            )
        return replace(self, **body)


class FaultInjector:
    """Applies the current Faults to every /api/v1 request; /healthz and /admin are spared."""

    def __init__(
        self,
        faults: Faults | None = None,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._faults = Faults()
        self._random = random.Random()
        self._sleep = sleep
        self.delayed_total = 0
        self.failed_total = 0
        self.refused_total = 0
        self.configure(faults or Faults())

    def __repr__(self) -> str:
        return f"<FaultInjector {self._faults}>"

    @property
    def faults(self) -> Faults:
        """The faults in force."""
        return self._faults

    def configure(self, faults: Faults) -> None:
        """Put new faults in force; a seed restarts the failure draws, so runs repeat."""
        self._faults = faults
        if faults.seed is not None:
            self._random = random.Random(faults.seed)

    async def apply(self) -> None:
        """Delay and/or refuse the current request as configured (raises BankUnavailable)."""
        faults = self._faults
        if faults.latency_ms:
            # The delay comes before the handler: a caller that gives up may still see the
            # request applied later, exactly the ambiguity a real slow bank creates.
            self.delayed_total += 1
            await self._sleep(faults.latency_ms / 1000)
        if faults.refuse_all:
            self.refused_total += 1
            raise BankUnavailable("the bank is down (refuse_all fault)", fault="refuse_all")
        if faults.failure_rate and self._random.random() < faults.failure_rate:
            self.failed_total += 1
            raise BankUnavailable("injected bank failure (failure_rate fault)", fault="failure")

    def middleware(self) -> Middleware:
        """An aiohttp middleware applying the faults before authentication and the handler."""

        @web.middleware
        async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.path.startswith(API_PREFIX + "/"):
                await self.apply()
            return await handler(request)

        return middleware
