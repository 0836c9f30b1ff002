"""Hold expiries (migration 0014): which holds are due, and forgetting settled ones."""

from __future__ import annotations

from collections.abc import Sequence

from transakt.storage.typing import Connection

__all__ = ["due_holds", "forget_holds"]


async def due_holds(connection: Connection, limit: int) -> list[str]:
    """Holds whose expiry has passed, oldest first, locked for this transaction (others skip
    them: several nodes sweep without doing the same hold twice)."""
    rows = await connection.fetch(
        "SELECT transfer_id FROM hold_expiries WHERE expires_at <= now() "
        "ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED",
        limit,
    )
    return [row["transfer_id"] for row in rows]


async def forget_holds(connection: Connection, transfer_ids: Sequence[str]) -> None:
    """Drop the expiries of holds that are settled."""
    await connection.execute(
        "DELETE FROM hold_expiries WHERE transfer_id = ANY($1::text[])", list(transfer_ids)
    )
