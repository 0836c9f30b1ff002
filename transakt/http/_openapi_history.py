"""The OpenAPI parts of the history endpoints: the transactions page's filters, statements,
balances at an instant and per day (self-contained: schemas inline, errors by reference)."""

from __future__ import annotations

from typing import Final

from transakt.http._openapi_components import ERRORS, Json, string
from transakt.http.constants import API_PREFIX
from transakt.money import MAX_AMOUNT
from transakt.services.history import MAX_SERIES_DAYS, MAX_STATEMENT_DAYS, MAX_STATEMENT_ROWS

__all__ = ["HISTORY_FILTERS", "history_paths"]

_INSTANT: Final = string(format="date-time", description="RFC 3339 with an offset")
_DAY: Final = string(format="date", description="a UTC day, YYYY-MM-DD")


def _query(name: str, schema: Json, description: str, *, required: bool = False) -> Json:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema,
    }


def _list_of(values: list[str]) -> Json:
    return {"type": "array", "items": string(enum=values)}


def _amount(name: str, description: str) -> Json:
    schema = {"type": "integer", "minimum": 0, "maximum": MAX_AMOUNT}
    return _query(name, schema, description)


HISTORY_FILTERS: Final[list[Json]] = [
    {
        **_query(
            "kind",
            _list_of(["p2p", "deposit", "withdrawal"]),
            "only these kinds; repeat the parameter or separate with commas",
        ),
        "style": "form",
        "explode": True,
    },
    {
        **_query(
            "status",
            _list_of(["pending", "posted", "voided"]),
            "only these statuses; repeat the parameter or separate with commas",
        ),
        "style": "form",
        "explode": True,
    },
    _query("counterparty", string(), "only transfers with this other wallet (or account) id"),
    _query("from", _INSTANT, "only transfers created at or after this instant"),
    _query("to", _INSTANT, "only transfers created before this instant"),
    _amount("min_amount", "only amounts of at least this many minor units"),
    _amount("max_amount", "only amounts of at most this many minor units"),
]


def _errors(*names: str) -> Json:
    return {ERRORS[name][0]: {"$ref": f"#/components/responses/{name}"} for name in names}


def _operation(operation_id: str, summary: str, ok: Json, parameters: list[Json]) -> Json:
    return {
        "operationId": operation_id,
        "summary": summary,
        "tags": ["wallet"],
        "parameters": [{"$ref": "#/components/parameters/WalletId"}, *parameters],
        "responses": {
            "200": ok,
            **_errors("ValidationError", "Unauthorized", "Forbidden", "NotFound"),
        },
    }


_BALANCE: Final[Json] = {
    "type": "object",
    "required": ["wallet", "currency", "at", "balance"],
    "properties": {
        "wallet": string(),
        "currency": string(),
        "at": _INSTANT,
        "balance": {"type": "integer", "description": "posted money at that instant"},
    },
}
_DAILY: Final[Json] = {
    "type": "object",
    "required": ["wallet", "currency", "from", "to", "days"],
    "properties": {
        "wallet": string(),
        "currency": string(),
        "from": _DAY,
        "to": _DAY,
        "days": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["date", "closing_balance", "final"],
                "properties": {
                    "date": _DAY,
                    "closing_balance": {"type": "integer"},
                    "final": {
                        "type": "boolean",
                        "description": "false while a commit may still land in the day "
                        "(today's is the balance so far)",
                    },
                },
            },
        },
    },
}


def history_paths() -> Json:
    """The statement and balance paths."""
    wallet = f"{API_PREFIX}/wallets/{{id}}"
    return {
        f"{wallet}/statement": {
            "get": _operation(
                "statement",
                f"The wallet's transfers of [from, to) as CSV (at most {MAX_STATEMENT_DAYS} days "
                f"and {MAX_STATEMENT_ROWS} transfers): an opening_balance row, one row per "
                "transfer (posted ones when they posted, pending and voided ones when made; "
                "amount signed from the wallet's side; running_balance counts posted money "
                "only), a closing_balance row last. Text cells a spreadsheet would run as a "
                "formula start with an apostrophe.",
                {
                    "description": "header: date,id,kind,status,counterparty,amount,currency,"
                    "memo,running_balance",
                    "content": {"text/csv": {"schema": string()}},
                },
                [
                    _query("from", _INSTANT, "start of the period (inclusive)", required=True),
                    _query("to", _INSTANT, "end of the period (exclusive)", required=True),
                ],
            )
        },
        f"{wallet}/balance": {
            "get": _operation(
                "balance_at",
                "The wallet's posted balance at an instant (every transfer posted at or "
                "before it); not in the future",
                {"description": "", "content": {"application/json": {"schema": _BALANCE}}},
                [_query("at", _INSTANT, "the instant", required=True)],
            )
        },
        f"{wallet}/balance/daily": {
            "get": _operation(
                "daily_balances",
                f"The closing posted balance of each UTC day of [from, to] (at most "
                f"{MAX_SERIES_DAYS} days, not after today)",
                {"description": "", "content": {"application/json": {"schema": _DAILY}}},
                [
                    _query("from", _DAY, "first day", required=True),
                    _query("to", _DAY, "last day (inclusive)", required=True),
                ],
            )
        },
    }
