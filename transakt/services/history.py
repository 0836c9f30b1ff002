"""HistoryService: a wallet's past as its owner may read it (filtered pages, statements,
balances at an instant and per day), without summing its whole history on each call."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Final

import asyncpg

from transakt.errors import ValidationFailed
from transakt.models import Transfer, rfc3339
from transakt.services.wallets import WalletService
from transakt.storage.history import HistoryFilter, HistoryStore, StatementRow
from transakt.storage.typing import Connection

__all__ = [
    "BALANCE_GRACE",
    "MAX_SERIES_DAYS",
    "MAX_STATEMENT_DAYS",
    "MAX_STATEMENT_ROWS",
    "DailyBalance",
    "HistoryFilter",
    "HistoryService",
    "Statement",
    "StatementLine",
    "last_closed_day",
    "parse_seq_cursor",
]

# A day's closing balance is recorded once no commit can still stamp a time in it: a commit
# stamps its transaction's start, so the day must have ended before the oldest writing
# transaction began, and this long ago (a margin for what pg_stat_activity cannot show).
BALANCE_GRACE: Final = timedelta(minutes=5)
MAX_SERIES_DAYS: Final = 366
MAX_STATEMENT_DAYS: Final = 366
MAX_STATEMENT_ROWS: Final = 100_000

_MAX_SEQ: Final = 2**63 - 1
_ONE_DAY: Final = timedelta(days=1)
_TICK: Final = timedelta(microseconds=1)  # PostgreSQL's timestamp resolution
_FOREIGN_CURSOR: Final = (
    "this cursor belongs to a page with other filters; repeat that page's filters, "
    "or start again without a cursor"
)
_UNKNOWN_CURSOR: Final = "cursor is not one this server issued"


def midnight(day: date) -> datetime:
    """The instant a UTC day starts."""
    return datetime.combine(day, time(), tzinfo=UTC)


def day_of(moment: datetime) -> date:
    """The UTC day an instant falls in."""
    return moment.astimezone(UTC).date()


def last_closed_day(now: datetime, oldest_writer: datetime | None) -> date:
    """The last UTC day no commit can still land in (see BALANCE_GRACE)."""
    cut = now - BALANCE_GRACE
    if oldest_writer is not None:
        cut = min(cut, oldest_writer)
    return day_of(cut) - _ONE_DAY


def _fingerprint(where: HistoryFilter) -> str:
    canonical = "|".join(
        [
            ",".join(sorted(set(where.kinds))),
            ",".join(sorted(set(where.statuses))),
            where.counterparty or "",
            rfc3339(where.created_from) or "",
            rfc3339(where.created_to) or "",
            "" if where.min_amount is None else str(where.min_amount),
            "" if where.max_amount is None else str(where.max_amount),
            ",".join(f"{key}={value}" for key, value in sorted(set(where.metadata))),
        ]
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def parse_seq_cursor(cursor: str, letter: str) -> int:
    """The seq in a cursor of the form ``<letter><digits>`` this server issued (a page continues
    before or after it); anything else, or a seq past PostgreSQL's bigint, is a 422."""
    digits = cursor[1:]
    if cursor[:1] != letter or not (digits.isascii() and digits.isdigit()) or len(digits) > 19:
        raise ValidationFailed(_UNKNOWN_CURSOR, field="cursor")
    seq = int(digits)
    if seq > _MAX_SEQ:
        raise ValidationFailed(_UNKNOWN_CURSOR, field="cursor")
    return seq


def encode_cursor(seq: int | None, where: HistoryFilter) -> str | None:
    """The next page's cursor: the seq to continue before and, when filtered, a fingerprint of
    the filters (unfiltered cursors keep the form they always had)."""
    if seq is None:
        return None
    return f"s{seq}" if where.empty else f"s{seq}.{_fingerprint(where)}"


def decode_cursor(cursor: str | None, where: HistoryFilter) -> int | None:
    """The seq a cursor continues before; a cursor of other filters is refused (422)."""
    if cursor is None or cursor == "":
        return None
    position, _, fingerprint = cursor.partition(".")
    seq = parse_seq_cursor(position, "s")
    expected = "" if where.empty else _fingerprint(where)
    if fingerprint != expected:
        raise ValidationFailed(_FOREIGN_CURSOR, field="cursor")
    return seq


def check_filter(where: HistoryFilter) -> None:
    """Refuse filters that contradict each other (each field is checked for shape by http)."""
    if (
        where.min_amount is not None
        and where.max_amount is not None
        and where.min_amount > where.max_amount
    ):
        message = "min_amount must not be above max_amount"
        raise ValidationFailed(message, fields={"min_amount": message, "max_amount": message})
    if (
        where.created_from is not None
        and where.created_to is not None
        and where.created_from >= where.created_to
    ):
        message = "from must be before to"
        raise ValidationFailed(message, fields={"from": message, "to": message})


@dataclass(frozen=True, slots=True)
class DailyBalance:
    """A UTC day's closing posted balance; ``final`` once no commit can still change it."""

    day: date
    closing_balance: int
    final: bool

    def to_json(self) -> dict[str, object]:
        """The API's shape."""
        return {
            "date": self.day.isoformat(),
            "closing_balance": self.closing_balance,
            "final": self.final,
        }


@dataclass(frozen=True, slots=True)
class StatementLine:
    """A statement row from the wallet's side: signed amount, the other party, the balance."""

    moment: datetime
    id: str
    kind: str
    status: str
    counterparty: str
    amount: int  # signed: money in is positive
    currency: str
    memo: str | None
    running_balance: int


@dataclass(slots=True)
class Statement:
    """A wallet's statement of [start, end): balances at both ends and its lines, in order."""

    wallet_id: str
    currency: str
    start: datetime
    end: datetime
    opening_balance: int
    closing_balance: int
    rows: int
    _source: AsyncGenerator[StatementRow, None] = field(repr=False)

    async def lines(self) -> AsyncGenerator[StatementLine, None]:
        """The lines, each with the posted balance after it (pending and voided lines leave
        it as it was: they never moved it)."""
        running = self.opening_balance
        async with aclosing(self._source) as source:
            async for row in source:
                incoming = row.to_account == self.wallet_id
                signed = row.amount if incoming else -row.amount
                if row.status == "posted":
                    running += signed
                yield StatementLine(
                    moment=row.moment,
                    id=row.id,
                    kind=row.kind,
                    status=row.status,
                    counterparty=row.from_account if incoming else row.to_account,
                    amount=signed,
                    currency=row.currency,
                    memo=row.memo,
                    running_balance=running,
                )


class HistoryService:
    """Filtered history, statements and balance history of the caller's own wallets."""

    __slots__ = ("_store", "_wallets")

    def __init__(self, pool: asyncpg.Pool, wallets: WalletService) -> None:
        self._store = HistoryStore(pool)
        self._wallets = wallets

    def __repr__(self) -> str:
        return f"<HistoryService {self._store!r}>"

    # -- history pages -----------------------------------------------------------------------

    async def transactions(
        self,
        user_id: str,
        wallet_id: str,
        where: HistoryFilter,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[Transfer], str | None]:
        """A page of the wallet's transfers matching ``where``, newest first, and the cursor
        of the next page (valid with the same filters only)."""
        check_filter(where)
        before = decode_cursor(cursor, where)
        await self._wallets.owned_wallet(user_id, wallet_id)
        items, next_seq = await self._store.transactions(wallet_id, where, limit, before)
        return items, encode_cursor(next_seq, where)

    # -- balances ----------------------------------------------------------------------------

    async def balance_at(self, user_id: str, wallet_id: str, at: datetime) -> tuple[str, int]:
        """The wallet's currency and its posted balance at ``at`` (every transfer posted at or
        before that instant counted); ``at`` may not lie in the future."""
        owner = await self._wallets.owned_wallet(user_id, wallet_id)
        now, oldest = await self._store.clock()
        if at > now:
            raise ValidationFailed("at must not be in the future", field="at")
        opened = await self._opened(wallet_id)
        moment = at + _TICK
        closed = await self._record_days(wallet_id, opened, moment, now, oldest)
        return owner.currency, await self._balance_before(wallet_id, opened, moment, closed)

    async def daily_balances(
        self, user_id: str, wallet_id: str, first: date, last: date
    ) -> tuple[str, list[DailyBalance]]:
        """The wallet's currency and the closing balance of each UTC day of [first, last];
        today's is the balance so far, and days not closed yet are not ``final``."""
        owner = await self._wallets.owned_wallet(user_id, wallet_id)
        if first > last:
            message = "from must not be after to"
            raise ValidationFailed(message, fields={"from": message, "to": message})
        if (last - first).days + 1 > MAX_SERIES_DAYS:
            message = f"a series covers at most {MAX_SERIES_DAYS} days"
            raise ValidationFailed(message, fields={"from": message, "to": message})
        now, oldest = await self._store.clock()
        if last > day_of(now):
            raise ValidationFailed("to must not be after today (UTC)", field="to")
        opened = await self._opened(wallet_id)
        closed = await self._record_days(wallet_id, opened, midnight(last + _ONE_DAY), now, oldest)
        recorded = await self._store.closing_balances(wallet_id, first, min(last, closed))
        first_recorded = day_of(opened) - _ONE_DAY
        series: list[DailyBalance] = []
        day = first
        while day <= last:
            if day < first_recorded:
                balance = 0  # before the wallet existed
            elif day <= closed:
                balance = recorded[day]
            else:
                balance = await self._balance_before(
                    wallet_id, opened, midnight(day + _ONE_DAY), closed
                )
            series.append(DailyBalance(day, balance, day <= closed))
            day += _ONE_DAY
        return owner.currency, series

    # -- statements --------------------------------------------------------------------------

    @asynccontextmanager
    async def statement(
        self, user_id: str, wallet_id: str, start: datetime, end: datetime
    ) -> AsyncIterator[Statement]:
        """The wallet's statement of [start, end), read in one snapshot of the ledger (its
        lines are streamed from the database while the context is open)."""
        owner = await self._wallets.owned_wallet(user_id, wallet_id)
        if start >= end:
            message = "from must be before to"
            raise ValidationFailed(message, fields={"from": message, "to": message})
        if end - start > timedelta(days=MAX_STATEMENT_DAYS):
            message = f"a statement covers at most {MAX_STATEMENT_DAYS} days"
            raise ValidationFailed(message, fields={"from": message, "to": message})
        now, oldest = await self._store.clock()
        opened = await self._opened(wallet_id)
        closed = await self._record_days(wallet_id, opened, end, now, oldest)
        async with self._store.snapshot() as connection:
            rows = await self._store.statement_count(connection, wallet_id, start, end)
            if rows > MAX_STATEMENT_ROWS:
                message = (
                    f"this period holds {rows} transfers, more than the {MAX_STATEMENT_ROWS} "
                    f"a statement lists; ask for a shorter period"
                )
                raise ValidationFailed(message, fields={"from": message, "to": message})
            opening = await self._balance_before(wallet_id, opened, start, closed, connection)
            closing = await self._balance_before(wallet_id, opened, end, closed, connection)
            yield Statement(
                wallet_id=wallet_id,
                currency=owner.currency,
                start=start,
                end=end,
                opening_balance=opening,
                closing_balance=closing,
                rows=rows,
                _source=self._store.statement_rows(connection, wallet_id, start, end),
            )

    # -- helpers -----------------------------------------------------------------------------

    async def _opened(self, wallet_id: str) -> datetime:
        opened = await self._store.account_opened(wallet_id)
        if opened is None:  # owned_wallet found it: accounts are never deleted
            raise LookupError(wallet_id)
        return opened

    async def _record_days(
        self,
        wallet_id: str,
        opened: datetime,
        moment: datetime,
        now: datetime,
        oldest_writer: datetime | None,
    ) -> date:
        """Record the closing balances of the closed days before ``moment``'s day; the last
        closed day."""
        closed = last_closed_day(now, oldest_writer)
        # From the day before the account opened (at zero): a transfer committed right after
        # the account may carry a start time from just before it.
        first = day_of(opened) - _ONE_DAY
        upto = min(day_of(moment) - _ONE_DAY, closed)
        if upto >= first:
            await self._store.fill_days(wallet_id, first, upto)
        return closed

    async def _balance_before(
        self,
        wallet_id: str,
        opened: datetime,
        moment: datetime,
        closed: date,
        connection: Connection | None = None,
    ) -> int:
        """The posted balance counting every transfer posted before ``moment``: the last
        recorded day's close, plus what posted since (an index range of recent transfers)."""
        upto = min(day_of(moment) - _ONE_DAY, closed)
        recorded = await self._store.recorded_day(wallet_id, upto, connection)
        if recorded is None:
            since, base = midnight(day_of(opened) - _ONE_DAY), 0
        else:
            since, base = midnight(recorded[0] + _ONE_DAY), recorded[1]
        if moment <= since:
            return base
        return base + await self._store.posted_sum(wallet_id, since, moment, connection)
