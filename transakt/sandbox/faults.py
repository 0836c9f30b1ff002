"""Fault knobs for demos and tests: slow answers, a share of 503s, or a bank that is down."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from transakt.bankapi.constants import API_PREFIX
from transakt.bankapi.faults import Faults
from transakt.errors import BankUnavailable

__all__ = ["FaultInjector", "Faults"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


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
