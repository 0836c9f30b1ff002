"""The sandbox bank's outage mode, switched from the wallet (dev mode only): play with an outage.

A newcomer never sees a deposit wait: the sandbox bank answers in milliseconds. Through this
service a signed-in user of a dev node reads and sets the bank's mode (``normal``, ``slow``,
``down``, ``refusing``; see :mod:`transakt.bankapi.modes`) over the bank's existing admin API,
so the wallet's gateway meets the outage exactly as it would a real one: with ``down`` its
breaker opens and deposits wait in the buffer, pending; with ``normal`` they post.

Switching is throttled per user (in this node's memory: the endpoint exists in dev mode only).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any, Final

from limits import parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

from transakt.bankapi.errors import BankRequestRejected
from transakt.bankapi.faults import Faults
from transakt.bankapi.modes import BankMode, faults_for, mode_of
from transakt.errors import BankUnavailable, RateLimited
from transakt.gateway.client import BankClient

__all__ = ["SWITCH_LIMIT", "SandboxBank", "SandboxBankState"]

#: How often one user may switch the bank's mode.
SWITCH_LIMIT: Final = "20/minute"


@dataclass(frozen=True, slots=True)
class SandboxBankState:
    """What GET /api/v1/sandbox/bank answers: the bank's mode and its delay per call."""

    mode: BankMode
    latency_ms: int

    @classmethod
    def of(cls, faults: Faults) -> SandboxBankState:
        """The state these faults amount to."""
        return cls(mode=mode_of(faults), latency_ms=faults.latency_ms)

    def to_json(self) -> dict[str, Any]:
        """The contract's shape: ``{"mode", "latency_ms"}``."""
        return {"mode": self.mode, "latency_ms": self.latency_ms}


class SandboxBank:
    """Reads and sets the sandbox bank's outage mode through its admin API (with the node's own
    bank client, given per call), and counts each user's switches."""

    def __init__(self, *, switch_limit: str = SWITCH_LIMIT) -> None:
        self._limit = parse(switch_limit)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self.switches = 0

    def __repr__(self) -> str:
        return f"<SandboxBank switches={self.switches}>"

    async def state(self, bank: BankClient) -> SandboxBankState:
        """The bank's mode now (BankUnavailable when the bank cannot say)."""
        return SandboxBankState.of(await self._admin(bank.get_faults()))

    async def switch(
        self, bank: BankClient, user_id: str, mode: BankMode, latency_ms: int | None = None
    ) -> SandboxBankState:
        """Put the bank in ``mode`` (every knob a mode sets; the seed is kept); ``latency_ms``
        replaces the slow mode's delay."""
        if not await self._limiter.hit(self._limit, "sandbox_bank", user_id):
            stats = await self._limiter.get_window_stats(self._limit, "sandbox_bank", user_id)
            raise RateLimited(
                f"too many switches of the sandbox bank's mode: {self._limit.amount} per "
                "minute; try again later",
                retry_after=max(stats.reset_time - time.time(), 1.0),
                limit=self._limit.amount,
                window=self._limit.get_expiry(),
            )
        wanted = faults_for(mode)
        if mode == "slow" and latency_ms:
            wanted = replace(wanted, latency_ms=latency_ms)
        faults = await self._admin(
            bank.set_faults(
                latency_ms=wanted.latency_ms,
                failure_rate=wanted.failure_rate,
                refuse_all=wanted.refuse_all,
                decline_all=wanted.decline_all,
            )
        )
        self.switches += 1
        return SandboxBankState.of(faults)

    @staticmethod
    async def _admin(call: Any) -> Faults:
        try:
            faults: Faults = await call
        except BankRequestRejected as error:
            # Not a sandbox bank (no admin API), or one that predates a knob: the wallet cannot
            # act on it, which for the caller is a bank not available for this.
            raise BankUnavailable(
                f"the bank at TRANSAKT_BANK_URL does not take outage modes ({error.code})"
            ) from None
        return faults
