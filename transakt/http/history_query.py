"""Query parameters of the history endpoints: filters, instants, days, each checked for shape
(a bad one is a 422 naming it, never a 500)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Final

from multidict import MultiMapping

from transakt.errors import ValidationFailed
from transakt.http.constants import MAX_ID_LENGTH
from transakt.money import MAX_AMOUNT
from transakt.services.history import HistoryFilter

__all__ = [
    "TRANSACTION_PARAMETERS",
    "parse_day",
    "parse_filter",
    "parse_instant",
    "refuse_unknown",
    "single",
]

KINDS: Final = ("p2p", "deposit", "withdrawal")
STATUSES: Final = ("pending", "posted", "voided")
TRANSACTION_PARAMETERS: Final = frozenset(
    {
        "limit",
        "cursor",
        "kind",
        "status",
        "counterparty",
        "from",
        "to",
        "min_amount",
        "max_amount",
        "metadata.*",  # metadata.<key>=<value>, repeatable over keys
    }
)

_ID: Final = re.compile(r"[A-Za-z0-9_.:-]+")
_AMOUNT: Final = re.compile(r"[0-9]{1,16}")
# RFC 3339 date-time; fractions beyond microseconds are cut (PostgreSQL keeps microseconds).
_INSTANT: Final = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})"
)
_DAY: Final = re.compile(r"\d{4}-\d{2}-\d{2}")
# Instants are kept where PostgreSQL and Python both hold them, a day's margin either side.
_EARLIEST: Final = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST: Final = datetime(9999, 12, 30, tzinfo=UTC)


def _refuse(name: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{name}: {message}", fields={name: message})


def refuse_unknown(query: MultiMapping[str], known: Iterable[str]) -> None:
    """A misspelt filter must not quietly widen the answer: unknown parameters are a 422."""
    allowed = set(known)
    prefixes = tuple(name[:-1] for name in allowed if name.endswith(".*"))
    unknown = sorted(
        {name for name in query if name not in allowed and not name.startswith(prefixes or ("\0",))}
    )
    if unknown:
        message = "unknown query parameter"
        raise ValidationFailed(
            f"unknown query parameter: {', '.join(unknown)}",
            fields=dict.fromkeys(unknown, message),
        )


def _single(query: MultiMapping[str], name: str) -> str | None:
    values = query.getall(name, [])
    if len(values) > 1:
        raise _refuse(name, "give this parameter once")
    return values[0] if values else None


def _choices(query: MultiMapping[str], name: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    """A repeatable parameter, each value also a comma-separated list: ``?kind=p2p,deposit``."""
    chosen: list[str] = []
    for value in query.getall(name, []):
        for item in value.split(","):
            if item not in allowed:
                raise _refuse(name, f"must be one of {', '.join(allowed)}")
            if item not in chosen:
                chosen.append(item)
    return tuple(chosen)


def parse_instant(raw: str | None, name: str, *, required: bool = False) -> datetime | None:
    """An RFC 3339 date-time with an offset (``2026-01-31T23:00:00Z``), as UTC."""
    if raw is None:
        if required:
            raise _refuse(name, "this parameter is required")
        return None
    match = _INSTANT.fullmatch(raw)
    if match is None:
        raise _refuse(name, "must be an RFC 3339 date-time with an offset, like 2026-01-31T23:00Z")
    day, clock, fraction, offset = match.groups()
    text = f"{day}T{clock}.{(fraction or '0')[:6].ljust(6, '0')}"
    text += "+00:00" if offset in ("Z", "z") else offset
    try:
        moment = datetime.fromisoformat(text).astimezone(UTC)
    except (ValueError, OverflowError):
        raise _refuse(name, "is not a real date and time") from None
    if not _EARLIEST <= moment <= _LATEST:
        raise _refuse(name, "must lie between 1970 and 9999")
    return moment


def parse_day(raw: str | None, name: str) -> date:
    """A required UTC calendar day, ``YYYY-MM-DD``."""
    if raw is None:
        raise _refuse(name, "this parameter is required")
    if not _DAY.fullmatch(raw):
        raise _refuse(name, "must be a date like 2026-01-31")
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise _refuse(name, "is not a real date") from None
    if day.year < 1970:
        raise _refuse(name, "must not be before 1970")
    return day


def _amount(raw: str | None, name: str) -> int | None:
    if raw is None:
        return None
    if not _AMOUNT.fullmatch(raw) or int(raw) > MAX_AMOUNT:
        raise _refuse(name, f"must be an integer of minor units from 0 to {MAX_AMOUNT}")
    return int(raw)


def _counterparty(raw: str | None) -> str | None:
    if raw is None:
        return None
    if len(raw) > MAX_ID_LENGTH or not _ID.fullmatch(raw):
        raise _refuse("counterparty", "must be a wallet id")
    return raw


def parse_filter(query: MultiMapping[str]) -> HistoryFilter:
    """The filters of ``GET /wallets/{id}/transactions``; an absent one does not narrow."""
    return HistoryFilter(
        kinds=_choices(query, "kind", KINDS),
        statuses=_choices(query, "status", STATUSES),
        counterparty=_counterparty(_single(query, "counterparty")),
        created_from=parse_instant(_single(query, "from"), "from"),
        created_to=parse_instant(_single(query, "to"), "to"),
        min_amount=_amount(_single(query, "min_amount"), "min_amount"),
        max_amount=_amount(_single(query, "max_amount"), "max_amount"),
        metadata=_metadata(query),
    )


_METADATA_KEY: Final = re.compile(r"metadata\.([A-Za-z0-9_.-]{1,40})")


def _metadata(query: MultiMapping[str]) -> tuple[tuple[str, str], ...]:
    """``metadata.<key>=<value>`` pairs (at most 5; a key given once)."""
    pairs: list[tuple[str, str]] = []
    for name in dict.fromkeys(name for name in query if name.startswith("metadata.")):
        found = _METADATA_KEY.fullmatch(name)
        if found is None:
            raise _refuse(name, "metadata keys are 1 to 40 letters, digits, '_', '.' or '-'")
        value = _single(query, name)
        assert value is not None
        if len(value) > 200:
            raise _refuse(name, "a metadata value is at most 200 characters")
        pairs.append((found.group(1), value))
    if len(pairs) > 5:
        raise _refuse("metadata", "filter on 5 metadata keys at most")
    return tuple(pairs)


def single(query: MultiMapping[str], name: str) -> str | None:
    """A parameter that may be given at most once."""
    return _single(query, name)
