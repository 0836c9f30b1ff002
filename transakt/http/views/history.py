"""A wallet's past: its statement as CSV, its balance at an instant and per day."""

from __future__ import annotations

import logging
from contextlib import aclosing
from typing import Final

from aiohttp import web

from transakt.http.auth import current_user_id
from transakt.http.history_query import parse_day, parse_instant, refuse_unknown, single
from transakt.http.middlewares import apply_security_headers
from transakt.http.schemas import parse_path_id
from transakt.http.statement_csv import HEADER, closing_row, encode_rows, line_row, opening_row
from transakt.http.views._shared import node_of, service_of
from transakt.models import rfc3339
from transakt.services.history import HistoryService
from transakt.web.json import json_response

__all__ = ["balance_at", "daily_balances", "history_of", "statement"]

logger = logging.getLogger("transakt.http")

# Lines per chunk written to the client while a statement streams.
_CHUNK_LINES: Final = 500


def history_of(request: web.Request) -> HistoryService:
    """The history service over the node's pool and wallet service (it keeps no state)."""
    return HistoryService(node_of(request).pool, service_of(request))


async def balance_at(request: web.Request) -> web.Response:
    """GET /api/v1/wallets/{id}/balance?at=: the posted balance at an instant."""
    user_id = current_user_id(request)
    wallet_id = parse_path_id(request.match_info["id"], "wallet")
    refuse_unknown(request.query, ("at",))
    at = parse_instant(single(request.query, "at"), "at", required=True)
    assert at is not None
    currency, balance = await history_of(request).balance_at(user_id, wallet_id, at)
    return json_response(
        {"wallet": wallet_id, "currency": currency, "at": rfc3339(at), "balance": balance}
    )


async def daily_balances(request: web.Request) -> web.Response:
    """GET /api/v1/wallets/{id}/balance/daily?from=&to=: each UTC day's closing balance."""
    user_id = current_user_id(request)
    wallet_id = parse_path_id(request.match_info["id"], "wallet")
    refuse_unknown(request.query, ("from", "to"))
    first = parse_day(single(request.query, "from"), "from")
    last = parse_day(single(request.query, "to"), "to")
    currency, days = await history_of(request).daily_balances(user_id, wallet_id, first, last)
    return json_response(
        {
            "wallet": wallet_id,
            "currency": currency,
            "from": first.isoformat(),
            "to": last.isoformat(),
            "days": [day.to_json() for day in days],
        }
    )


async def statement(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/wallets/{id}/statement?from=&to=: the period's transfers as CSV, streamed."""
    user_id = current_user_id(request)
    wallet_id = parse_path_id(request.match_info["id"], "wallet")
    refuse_unknown(request.query, ("from", "to"))
    start = parse_instant(single(request.query, "from"), "from", required=True)
    end = parse_instant(single(request.query, "to"), "to", required=True)
    assert start is not None and end is not None
    async with history_of(request).statement(user_id, wallet_id, start, end) as period:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/csv; charset=utf-8",
                "Content-Disposition": (
                    f'attachment; filename="statement-{start.date().isoformat()}-'
                    f'{end.date().isoformat()}.csv"'
                ),
            }
        )
        apply_security_headers(request, response)
        await response.prepare(request)
        # From here on the status is sent: a failure can only cut the body short (the closing
        # balance row is then missing, which tells a reader the file is incomplete).
        try:
            rows = [HEADER, opening_row(period)]
            running = period.opening_balance
            async with aclosing(period.lines()) as lines:
                async for line in lines:
                    rows.append(line_row(line))
                    running = line.running_balance
                    if len(rows) >= _CHUNK_LINES:
                        await response.write(encode_rows(rows))
                        rows = []
            rows.append(closing_row(period, running))
            await response.write(encode_rows(rows))
        except ConnectionError:
            return response  # the client left
        except Exception:
            # No error answer can follow a started body: end the connection without the
            # final chunk, so the client sees a broken transfer rather than a short file.
            logger.exception("statement of %s failed while streaming", wallet_id)
            if request.transport is not None:
                request.transport.close()
            return response
    await response.write_eof()
    return response
