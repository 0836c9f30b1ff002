"""What a wallet may pay out: its owner's spend limits and the fraud-review rules, judged by the
wallet's own actor, in memory, in mailbox order.

The ``WalletActor`` hands each P2P payment it is about to approve to its ``SpendingGuard``. The
guard knows the wallet's limits and what the wallet spent in the current UTC day and UTC month
(loaded from the database when the actor first pays, and again after ``SpendingChanged``), and
the wallet's latest payments (for the review rules). It answers with a refusal
(``limit_exceeded``), the payment unchanged, or the payment turned into a *pending* transfer held
for review (its reasons recorded first). Each approved payment is then counted; one the ledger
refused, or found a duplicate, is given back. No query is made for an ordinary payment: only a
large one may ask whether the payer ever paid this recipient.

Windows are calendar windows in UTC: a day runs from 00:00 UTC, a month from the 1st, 00:00 UTC.
A payment counts in the window of the moment the actor approved it; the database's count (on a
reload) uses the moment it was committed, a few milliseconds later.
"""

from __future__ import annotations

import asyncio
import dataclasses
import statistics
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final, Literal

import asyncpg

from transakt.errors import LimitExceeded
from transakt.models import rfc3339
from transakt.storage.limits import (
    SpendLimits,
    has_paid,
    recent_payments,
    spend_limits,
    spent_between,
)
from transakt.storage.records import Applied, NewTransfer, Outcome, Rejected
from transakt.storage.reviews import open_review

__all__ = [
    "REASON_CODES",
    "ReviewRules",
    "SpendingChanged",
    "SpendingGuard",
    "day_start",
    "month_start",
]

Window = Literal["daily", "monthly"]

#: The reason codes a held payment may carry (a user learns these, never the thresholds).
REASON_CODES: Final = ("velocity_count", "velocity_amount", "unusual_amount", "new_recipient")
# How many of its latest payments a wallet loads for the velocity rules, at most.
_VELOCITY_LOAD: Final = 500


@dataclass(frozen=True, slots=True)
class SpendingChanged:
    """Tell a wallet's actor that its limits or its counted spending changed (a limit was set, a
    held payment voided): it reloads both before its next payment."""

    wallet_id: str


@dataclass(frozen=True, slots=True)
class ReviewRules:
    """Thresholds of the review rules; 0 turns a rule off (see ``ReviewSettings``)."""

    velocity_count: int = 0
    velocity_amount: int = 0
    velocity_seconds: float = 3600.0
    unusual_factor: float = 0.0
    unusual_history: int = 20
    unusual_min_history: int = 5
    new_recipient_amount: int = 0

    @property
    def active(self) -> bool:
        """True when at least one rule is on."""
        return bool(
            self.velocity_count
            or self.velocity_amount
            or self.unusual_factor
            or self.new_recipient_amount
        )


def _utc_now() -> datetime:
    return datetime.now(UTC)


def day_start(moment: datetime) -> datetime:
    """00:00 UTC of the moment's day."""
    moment = moment.astimezone(UTC)
    return datetime(moment.year, moment.month, moment.day, tzinfo=UTC)


def month_start(moment: datetime) -> datetime:
    """00:00 UTC of the first of the moment's month."""
    moment = moment.astimezone(UTC)
    return datetime(moment.year, moment.month, 1, tzinfo=UTC)


def _next_month(start: datetime) -> datetime:
    return (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )


@dataclass(slots=True)
class _Counted:
    """An approved payment whose commit has not finished: where it was counted."""

    day: date
    month: tuple[int, int]
    amount: int
    velocity: tuple[float, int]


class SpendingGuard:
    """One wallet's limits and review rules, counted in memory by the wallet's actor."""

    def __init__(
        self,
        wallet_id: str,
        pool: asyncpg.Pool,
        rules: ReviewRules | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.wallet_id = wallet_id
        self._pool = pool
        self._rules = rules if rules is not None and rules.active else None
        self._clock = clock
        #: True until loaded, and again after SpendingChanged or a failed commit.
        self.stale = True
        self.limits = SpendLimits()
        self._day = date.min
        self._month = (0, 0)
        self.spent_today = 0
        self.spent_this_month = 0
        # The review rules' memory: (epoch seconds, amount) of recent payments, and the amounts
        # of the latest posted ones (what is usual for this payer).
        self._recent: deque[tuple[float, int]] = deque()
        self._usual: deque[int] = deque(maxlen=rules.unusual_history if rules else 1)
        self._counted: dict[str, _Counted] = {}

    def __repr__(self) -> str:
        return (
            f"<SpendingGuard {self.wallet_id} daily={self.spent_today}/{self.limits.daily} "
            f"monthly={self.spent_this_month}/{self.limits.monthly}>"
        )

    @property
    def _idle(self) -> bool:
        """No limit and no rule: nothing to judge or count."""
        return self._rules is None and self.limits.daily is None and self.limits.monthly is None

    async def load(self) -> None:
        """Read the limits, what was spent in the current windows and the latest payments."""
        now = self._clock()
        self.limits = await spend_limits(self._pool, self.wallet_id)
        self._day, self._month = now.date(), (now.year, now.month)
        self.spent_today = self.spent_this_month = 0
        if self.limits.daily is not None or self.limits.monthly is not None:
            # Payments approved and not yet committed are counted on top: one committing during
            # the read counts twice until the next load, which errs on the safe side.
            day, month = await spent_between(
                self._pool, self.wallet_id, month_start(now), day_start(now), now + timedelta(1)
            )
            self.spent_today, self.spent_this_month = day, month
            for counted in self._counted.values():
                if counted.day == self._day:
                    self.spent_today += counted.amount
                if counted.month == self._month:
                    self.spent_this_month += counted.amount
        rules = self._rules
        self._recent.clear()
        self._usual.clear()
        if rules is not None:
            wanted = max(rules.unusual_history, rules.velocity_count + 1, _VELOCITY_LOAD)
            payments = await recent_payments(self._pool, self.wallet_id, wanted)
            since = now.timestamp() - rules.velocity_seconds
            for payment in reversed(payments):  # oldest first
                stamp = payment.created_at.timestamp()
                if stamp >= since:
                    self._recent.append((stamp, payment.amount))
                if payment.posted:
                    self._usual.append(payment.amount)
            self._recent.extend(counted.velocity for counted in self._counted.values())
        self.stale = False

    async def judge(self, transfer: NewTransfer) -> NewTransfer | Rejected:
        """The payment as it may go ahead (perhaps held for review), or its refusal."""
        hold = transfer.status == "pending" and transfer.id.startswith("hld_")
        if transfer.kind != "p2p" or (transfer.status != "posted" and not hold):
            return transfer
        if self.stale:
            await self.load()
        if self._idle:
            return transfer
        now = self._clock()
        self._roll(now)
        refusal = self._over_limit(transfer.amount, now)
        if refusal is not None:
            return Rejected(refusal)
        if self._rules is None or hold:  # a hold counts against the limits, is not reviewed
            return transfer
        reasons = await self._reasons(transfer, now)
        if not reasons:
            return transfer
        # Recorded before the transfer exists, so a held transfer always finds its reasons.
        await open_review(self._pool, transfer.id, transfer.from_account, reasons)
        return dataclasses.replace(transfer, status="pending", response_status=202)

    def count(self, transfer: NewTransfer) -> None:
        """Count a payment this wallet's actor approved (and handed to the ledger)."""
        if transfer.kind != "p2p" or self._idle:
            return
        now = self._clock()
        self._roll(now)
        self.spent_today += transfer.amount
        self.spent_this_month += transfer.amount
        stamp = (now.timestamp(), transfer.amount)
        if self._rules is not None:
            self._recent.append(stamp)
            if transfer.status == "posted":
                self._usual.append(transfer.amount)
        self._counted[transfer.id] = _Counted(self._day, self._month, transfer.amount, stamp)

    def settled(self, transfer_id: str, committed: asyncio.Future[Outcome]) -> None:
        """A commit finished: a payment that did not apply is given back."""
        if transfer_id not in self._counted:
            return
        if committed.cancelled() or committed.exception() is not None:
            self._counted.pop(transfer_id, None)
            self.stale = True  # the outcome is unknown: count again from the database
            return
        self.release(transfer_id, applied=isinstance(committed.result(), Applied))

    def release(self, transfer_id: str, *, applied: bool) -> None:
        """The ledger answered for a counted payment: if it did not apply (refused, or a
        duplicate of one counted before), its amount no longer counts. (For callers that
        commit several payments in one operation, such as batches: once per payment.)"""
        counted = self._counted.pop(transfer_id, None)
        if counted is None or applied:
            return
        if counted.day == self._day:
            self.spent_today -= counted.amount
        if counted.month == self._month:
            self.spent_this_month -= counted.amount
        if counted.velocity in self._recent:
            self._recent.remove(counted.velocity)

    async def refuse_total(self, transfers: Sequence[NewTransfer]) -> Rejected | None:
        """The limits alone, for payments that apply together (an atomic batch): a refusal if
        their sum would pass a limit. The caller counts each one that goes ahead."""
        if self.stale:
            await self.load()
        total = sum(transfer.amount for transfer in transfers if transfer.kind == "p2p")
        if self._idle or not total:
            return None
        now = self._clock()
        self._roll(now)
        refusal = self._over_limit(total, now)
        return None if refusal is None else Rejected(refusal)

    # -- helpers ------------------------------------------------------------------------------

    def _roll(self, now: datetime) -> None:
        """Start a new day's (and month's) count when the clock passed into one."""
        today = now.date()
        if today != self._day:
            self._day = today
            self.spent_today = 0
        month = (now.year, now.month)
        if month != self._month:
            self._month = month
            self.spent_this_month = 0

    def _over_limit(self, amount: int, now: datetime) -> LimitExceeded | None:
        windows: tuple[tuple[Window, int | None, int, datetime], ...] = (
            ("daily", self.limits.daily, self.spent_today, day_start(now) + timedelta(1)),
            ("monthly", self.limits.monthly, self.spent_this_month, _next_month(month_start(now))),
        )
        for window, limit, spent, resets in windows:
            if limit is not None and spent + amount > limit:
                remaining = max(limit - spent, 0)
                return LimitExceeded(
                    f"this payment would exceed the wallet's {window} spend limit",
                    wallet=self.wallet_id,
                    window=window,
                    limit=limit,
                    remaining=remaining,
                    resets_at=rfc3339(resets),
                )
        return None

    async def _reasons(self, transfer: NewTransfer, now: datetime) -> list[str]:
        rules = self._rules
        assert rules is not None
        reasons: list[str] = []
        since = now.timestamp() - rules.velocity_seconds
        while self._recent and self._recent[0][0] < since:
            self._recent.popleft()
        if rules.velocity_count and len(self._recent) + 1 > rules.velocity_count:
            reasons.append("velocity_count")
        if rules.velocity_amount and (
            sum(amount for _stamp, amount in self._recent) + transfer.amount > rules.velocity_amount
        ):
            reasons.append("velocity_amount")
        if (
            rules.unusual_factor
            and len(self._usual) >= rules.unusual_min_history
            and transfer.amount > rules.unusual_factor * statistics.median(self._usual)
        ):
            reasons.append("unusual_amount")
        if (
            rules.new_recipient_amount
            and transfer.amount >= rules.new_recipient_amount
            and not await has_paid(self._pool, transfer.from_account, transfer.to_account)
        ):
            reasons.append("new_recipient")
        return reasons

    def describe(self) -> dict[str, Any]:
        """The counters, for logs and tests."""
        return {
            "daily": self.limits.daily,
            "monthly": self.limits.monthly,
            "spent_today": self.spent_today,
            "spent_this_month": self.spent_this_month,
        }
