"""Audit of the ledger's invariants, straight from the rows: what must hold after any history."""

from __future__ import annotations

import asyncpg

_CHECKS: tuple[tuple[str, str], ...] = (
    (
        "per currency, all balances sum to zero",
        "SELECT currency || ' sums to ' || sum(balance) FROM accounts "
        "GROUP BY currency HAVING sum(balance) <> 0",
    ),
    (
        "no wallet below zero counting holds",
        "SELECT id || ' has available ' || (balance - pending_out) FROM accounts "
        "WHERE kind = 'wallet' AND balance - pending_out < 0",
    ),
    (
        "every balance equals its posted transfers, every hold its pending ones",
        """
        SELECT a.id || ' stores ' || a.balance || '/' || a.pending_in || '/' || a.pending_out
               || ' but its transfers give ' || t.balance || '/' || t.pending_in || '/'
               || t.pending_out
        FROM accounts a
        CROSS JOIN LATERAL (
            SELECT coalesce(sum(CASE WHEN status = 'posted' AND to_account = a.id THEN amount
                                     WHEN status = 'posted' THEN -amount END), 0) AS balance,
                   coalesce(sum(amount) FILTER (WHERE status = 'pending'
                                                AND to_account = a.id), 0) AS pending_in,
                   coalesce(sum(amount) FILTER (WHERE status = 'pending'
                                                AND from_account = a.id), 0) AS pending_out
            FROM transfers
            WHERE from_account = a.id OR to_account = a.id
        ) AS t
        WHERE (a.balance, a.pending_in, a.pending_out) <> (t.balance, t.pending_in, t.pending_out)
        """,
    ),
)


async def ledger_violations(pool: asyncpg.Pool) -> list[str]:
    """Every broken invariant, one line each; an empty list means the books are sound."""
    problems: list[str] = []
    for rule, query in _CHECKS:
        problems.extend(f"{rule}: {row[0]}" for row in await pool.fetch(query))
    return problems
