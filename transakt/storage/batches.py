"""Look-ups a batch of transfers needs, one statement each whatever the batch's size."""

from __future__ import annotations

from collections.abc import Collection

import asyncpg

from transakt.models import Transfer
from transakt.storage.records import TRANSFER_COLUMNS, transfer_from_row
from transakt.storage.repository import WalletOwner

__all__ = ["recipients_by_email", "transfers_by_id", "wallet_owners"]


async def wallet_owners(pool: asyncpg.Pool, wallet_ids: Collection[str]) -> dict[str, WalletOwner]:
    """Owner and currency of each wallet that exists among ``wallet_ids``."""
    rows = await pool.fetch(
        "SELECT id, user_id, currency FROM accounts WHERE id = ANY($1::text[]) AND kind = 'wallet'",
        list(wallet_ids),
    )
    return {row["id"]: WalletOwner(row["id"], row["user_id"], row["currency"]) for row in rows}


async def recipients_by_email(
    pool: asyncpg.Pool, emails: Collection[str], currency: str
) -> dict[str, tuple[bool, str | None]]:
    """For each address held by a user: whether it is verified, and their wallet in
    ``currency`` (None without one)."""
    rows = await pool.fetch(
        "SELECT u.email, u.email_verified_at IS NOT NULL AS verified, a.id AS wallet "
        "FROM users AS u LEFT JOIN accounts AS a "
        "ON a.user_id = u.id AND a.kind = 'wallet' AND a.currency = $2 "
        "WHERE u.email = ANY($1::text[])",
        list(emails),
        currency,
    )
    return {row["email"]: (row["verified"], row["wallet"]) for row in rows}


async def transfers_by_id(pool: asyncpg.Pool, transfer_ids: Collection[str]) -> dict[str, Transfer]:
    """The committed transfers among ``transfer_ids``."""
    rows = await pool.fetch(
        f"SELECT {TRANSFER_COLUMNS} FROM transfers WHERE id = ANY($1::text[])",
        list(transfer_ids),
    )
    return {row["id"]: transfer_from_row(row) for row in rows}
