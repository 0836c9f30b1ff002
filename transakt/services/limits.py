"""Spend limits: a wallet's owner caps what it pays out per UTC day and per UTC month.

The caps are stored here and enforced by the wallet's actor (``transakt.actors.limits``), which
counts every payment it approves; setting them tells the actor, which reloads before its next
payment. Only outgoing P2P payments count (posted, or held for review); a voided one does not.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from transakt.actors.limits import SpendingChanged, day_start, month_start
from transakt.actors.wallet import WalletActor
from transakt.models import rfc3339
from transakt.runtime import ActorSystem
from transakt.services.wallets import WalletService
from transakt.storage.limits import SpendLimits, set_limits, spend_limits, spent_between

__all__ = ["SpendLimitsService", "WalletLimits", "tell_spending_changed"]

log = logging.getLogger("transakt.limits")

# How long a limit change waits for the wallet's actor to take note (it is stored either way,
# and a freshly activated actor reads it anyway).
_NOTICE_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class WalletLimits:
    """A wallet's limits and where it stands in the current windows."""

    wallet_id: str
    currency: str
    limits: SpendLimits
    spent_today: int
    spent_this_month: int
    now: datetime

    def to_json(self) -> dict[str, Any]:
        """``{wallet, currency, daily, monthly, spent, remaining, resets_at}``."""
        month = month_start(self.now)
        next_month = (
            month.replace(year=month.year + 1, month=1)
            if month.month == 12
            else month.replace(month=month.month + 1)
        )
        daily, monthly = self.limits.daily, self.limits.monthly
        return {
            "wallet": self.wallet_id,
            "currency": self.currency,
            "daily": daily,
            "monthly": monthly,
            "spent": {"daily": self.spent_today, "monthly": self.spent_this_month},
            "remaining": {
                "daily": None if daily is None else max(daily - self.spent_today, 0),
                "monthly": None if monthly is None else max(monthly - self.spent_this_month, 0),
            },
            "resets_at": {
                "daily": rfc3339(day_start(self.now) + timedelta(1)),
                "monthly": rfc3339(next_month),
            },
            "updated_at": rfc3339(self.limits.updated_at),
        }


async def tell_spending_changed(system: ActorSystem, wallet_id: str) -> None:
    """Have the wallet's actor reload its limits and spending before its next payment."""
    with contextlib.suppress(Exception):
        wallet = system.entity(WalletActor, wallet_id)
        await wallet.ask(SpendingChanged(wallet_id), timeout=_NOTICE_SECONDS)
        return
    log.warning(
        "wallet %s was not told its spending changed; it reloads when next activated", wallet_id
    )


class SpendLimitsService:
    """Read and set a wallet's spend limits (its owner only)."""

    def __init__(self, wallets: WalletService, pool: asyncpg.Pool, system: ActorSystem) -> None:
        self._wallets = wallets
        self._pool = pool
        self._system = system

    async def get(self, user_id: str, wallet_id: str) -> WalletLimits:
        """The wallet's limits and what it spent in the current UTC day and month."""
        owner = await self._wallets.owned_wallet(user_id, wallet_id)
        now = datetime.now(UTC)
        limits = await spend_limits(self._pool, wallet_id)
        today, month = await spent_between(
            self._pool, wallet_id, month_start(now), day_start(now), now + timedelta(1)
        )
        return WalletLimits(wallet_id, owner.currency, limits, today, month, now)

    async def set(
        self, user_id: str, wallet_id: str, daily: int | None, monthly: int | None
    ) -> WalletLimits:
        """Replace the wallet's limits; its actor applies them from its next payment on."""
        await self._wallets.owned_wallet(user_id, wallet_id)
        await set_limits(self._pool, wallet_id, daily, monthly)
        await tell_spending_changed(self._system, wallet_id)
        return await self.get(user_id, wallet_id)
