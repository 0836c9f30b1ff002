"""Spend limits and the payment history the WalletActor judges payments by (SQL only).

Every read here runs when a wallet actor (re)loads its state or for a large payment, never once
per ordinary payment. "Spent" counts a wallet's outgoing P2P transfers that are posted or still
pending (a payment held for review is money promised): a voided one is given back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from transakt.storage.typing import Connection

__all__ = [
    "RecentPayment",
    "SpendLimits",
    "has_paid",
    "recent_payments",
    "set_limits",
    "spend_limits",
    "spent_between",
]

_LIMITS = "SELECT daily, monthly, updated_at FROM wallet_limits WHERE wallet_id = $1"
_SET_LIMITS = """
INSERT INTO wallet_limits (wallet_id, daily, monthly) VALUES ($1, $2, $3)
ON CONFLICT (wallet_id) DO UPDATE SET daily = $2, monthly = $3, updated_at = now()
RETURNING daily, monthly, updated_at
"""
# The wallet's transfers through its (from_account, seq) index; the month's are few per person.
_SPENT = """
SELECT coalesce(sum(amount) FILTER (WHERE created_at >= $3), 0)::bigint AS day,
       coalesce(sum(amount), 0)::bigint AS month
FROM transfers
WHERE from_account = $1 AND kind = 'p2p' AND status <> 'voided'
  AND created_at >= $2 AND created_at < $4
"""
_RECENT = """
SELECT amount, created_at, status FROM transfers
WHERE from_account = $1 AND kind = 'p2p' AND status <> 'voided'
ORDER BY seq DESC LIMIT $2
"""
_HAS_PAID = """
SELECT EXISTS (SELECT FROM transfers
               WHERE from_account = $1 AND to_account = $2 AND kind = 'p2p'
                 AND status = 'posted')
"""


@dataclass(frozen=True, slots=True)
class SpendLimits:
    """A wallet's caps in minor units (None: no cap) and when they were last set."""

    daily: int | None = None
    monthly: int | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class RecentPayment:
    """One of a wallet's latest outgoing P2P payments."""

    amount: int
    created_at: datetime
    posted: bool


async def spend_limits(connection: Connection | asyncpg.Pool, wallet_id: str) -> SpendLimits:
    """The wallet's limits (none set: no limits)."""
    row = await connection.fetchrow(_LIMITS, wallet_id)
    if row is None:
        return SpendLimits()
    return SpendLimits(row["daily"], row["monthly"], row["updated_at"])


async def set_limits(
    connection: Connection | asyncpg.Pool, wallet_id: str, daily: int | None, monthly: int | None
) -> SpendLimits:
    """Replace the wallet's limits."""
    row = await connection.fetchrow(_SET_LIMITS, wallet_id, daily, monthly)
    assert row is not None
    return SpendLimits(row["daily"], row["monthly"], row["updated_at"])


async def spent_between(
    connection: Connection | asyncpg.Pool,
    wallet_id: str,
    month_start: datetime,
    day_start: datetime,
    until: datetime,
) -> tuple[int, int]:
    """What the wallet paid out since ``day_start`` and since ``month_start`` (before ``until``)."""
    row = await connection.fetchrow(_SPENT, wallet_id, month_start, day_start, until)
    assert row is not None
    return int(row["day"]), int(row["month"])


async def recent_payments(
    connection: Connection | asyncpg.Pool, wallet_id: str, limit: int
) -> list[RecentPayment]:
    """The wallet's latest ``limit`` outgoing P2P payments (not voided), newest first."""
    rows = await connection.fetch(_RECENT, wallet_id, limit)
    return [
        RecentPayment(row["amount"], row["created_at"], row["status"] == "posted") for row in rows
    ]


async def has_paid(connection: Connection | asyncpg.Pool, payer: str, payee: str) -> bool:
    """True when ``payer`` has a posted P2P payment to ``payee``."""
    return bool(await connection.fetchval(_HAS_PAID, payer, payee))
