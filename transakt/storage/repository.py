"""Reads and the few non-ledger writes: users, wallets, transfers, history, idempotency."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from transakt.errors import EmailTaken, Unauthorized, WalletExists
from transakt.models import Transfer, User, Wallet
from transakt.storage.records import (
    TRANSFER_DETAIL,
    WALLET_COLUMNS,
    IdempotencyRecord,
    StoredAnswer,
    transfer_from_row,
    wallet_from_row,
)
from transakt.storage.typing import Connection

_USER_COLUMNS = "id, email, name, bank_account, created_at, email_verified_at, token_version"
_STORED_ANSWER = (
    "SELECT request_hash, status_code, response FROM idempotency_keys "
    "WHERE user_id = $1 AND key = $2"
)
_PRUNE_ANSWERS = """
DELETE FROM idempotency_keys WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM idempotency_keys
    WHERE created_at < now() - make_interval(secs => $1) LIMIT $2))
"""


def _stored_answer(row: asyncpg.Record) -> StoredAnswer:
    return StoredAnswer(row["request_hash"], row["status_code"], row["response"])


def _no_such_user() -> Unauthorized:
    # A validly signed token naming a user the database does not hold is no credential.
    return Unauthorized("the access token is invalid")


@dataclass(frozen=True, slots=True)
class WalletOwner:
    """The immutable facts about a wallet: who owns it and its currency (safe to cache)."""

    wallet_id: str
    user_id: str
    currency: str


def _user(row: asyncpg.Record) -> User:
    return User(
        id=row["id"],
        email=row["email"],
        name=row["name"],
        bank_account=row["bank_account"],
        created_at=row["created_at"],
        email_verified_at=row["email_verified_at"],
        token_version=row["token_version"],
    )


class Repository:
    """SQL for everything but the group-committed ledger writes."""

    __slots__ = ("pool",)

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    # -- users -------------------------------------------------------------------------------

    @staticmethod
    async def create_user(
        connection: Connection,
        *,
        user_id: str,
        email: str,
        name: str,
        password_hash: str,
        bank_account: str,
        wallet_id: str,
        currency: str,
        settlement_id: str,
    ) -> tuple[User, Wallet]:
        """Create a user and their first wallet, in the caller's transaction."""
        try:
            row = await connection.fetchrow(
                f"INSERT INTO users (id, email, name, password_hash, bank_account) "
                f"VALUES ($1, $2, $3, $4, $5) RETURNING {_USER_COLUMNS}",
                user_id,
                email,
                name,
                password_hash,
                bank_account,
            )
        except asyncpg.UniqueViolationError as error:
            raise EmailTaken("an account with this e-mail exists", field="email") from error
        wallet = await Repository._insert_wallet(connection, wallet_id, user_id, currency)
        await Repository._ensure_settlement(connection, settlement_id, currency)
        assert row is not None
        return _user(row), wallet

    async def user_by_email(self, email: str) -> tuple[User, str] | None:
        """The user with this (lower-case) e-mail and their password hash."""
        row = await self.pool.fetchrow(
            f"SELECT {_USER_COLUMNS}, password_hash FROM users WHERE email = $1", email
        )
        return None if row is None else (_user(row), row["password_hash"])

    async def password_hash_of(self, user_id: str) -> str | None:
        """The stored password hash of a user."""
        value: str | None = await self.pool.fetchval(
            "SELECT password_hash FROM users WHERE id = $1", user_id
        )
        return value

    async def user(self, user_id: str) -> User | None:
        """The user with this id."""
        row = await self.pool.fetchrow(f"SELECT {_USER_COLUMNS} FROM users WHERE id = $1", user_id)
        return None if row is None else _user(row)

    async def user_id_by_email(self, email: str) -> str | None:
        """The id of the user with this e-mail, if any."""
        value: str | None = await self.pool.fetchval("SELECT id FROM users WHERE email = $1", email)
        return value

    async def recipient_profile(self, email: str) -> tuple[str, bool, list[str]] | None:
        """The name of the user with this e-mail, whether it is verified, their currencies."""
        row = await self.pool.fetchrow(
            "SELECT u.name, u.email_verified_at IS NOT NULL AS verified, "
            "ARRAY(SELECT a.currency FROM accounts AS a "
            "      WHERE a.user_id = u.id AND a.kind = 'wallet' ORDER BY a.currency) AS currencies "
            "FROM users AS u WHERE u.email = $1",
            email,
        )
        if row is None:
            return None
        return row["name"], row["verified"], list(row["currencies"])

    async def recipient_by_email(self, email: str) -> tuple[str, bool] | None:
        """The id of the user with this e-mail and whether they verified it."""
        row = await self.pool.fetchrow(
            "SELECT id, email_verified_at IS NOT NULL AS verified FROM users WHERE email = $1",
            email,
        )
        return None if row is None else (row["id"], row["verified"])

    # -- wallets -----------------------------------------------------------------------------

    async def create_wallet(
        self,
        wallet_id: str,
        user_id: str,
        currency: str,
        settlement_id: str,
        idempotency: IdempotencyRecord | None,
    ) -> Wallet:
        """Create a wallet (one per user and currency), recording the idempotent response."""
        async with self.pool.acquire() as connection, connection.transaction():
            try:
                wallet = await self._insert_wallet(connection, wallet_id, user_id, currency)
            except asyncpg.ForeignKeyViolationError:
                raise _no_such_user() from None
            await self._ensure_settlement(connection, settlement_id, currency)
            if idempotency is not None:
                await connection.execute(
                    "INSERT INTO idempotency_keys (user_id, key, request_hash, status_code, "
                    "response) VALUES ($1, $2, $3, 201, $4)",
                    idempotency.user_id,
                    idempotency.key,
                    idempotency.request_hash,
                    wallet.to_json(),
                )
        return wallet

    @staticmethod
    async def _insert_wallet(
        connection: Connection, wallet_id: str, user_id: str, currency: str
    ) -> Wallet:
        try:
            row = await connection.fetchrow(
                f"INSERT INTO accounts (id, kind, user_id, currency) VALUES ($1, 'wallet', $2, $3) "
                f"RETURNING {WALLET_COLUMNS}",
                wallet_id,
                user_id,
                currency,
            )
        except asyncpg.UniqueViolationError as error:
            raise WalletExists(
                f"you already have a {currency} wallet", field="currency", currency=currency
            ) from error
        assert row is not None
        return wallet_from_row(row)

    @staticmethod
    async def _ensure_settlement(connection: Connection, settlement_id: str, currency: str) -> None:
        await connection.execute(
            "INSERT INTO accounts (id, kind, currency) VALUES ($1, 'settlement', $2) "
            "ON CONFLICT DO NOTHING",
            settlement_id,
            currency,
        )

    async def wallet(self, wallet_id: str) -> Wallet | None:
        """A wallet by id (settlement accounts are not wallets)."""
        row = await self.pool.fetchrow(
            f"SELECT {WALLET_COLUMNS} FROM accounts WHERE id = $1 AND kind = 'wallet'", wallet_id
        )
        return None if row is None else wallet_from_row(row)

    async def wallets_of(self, user_id: str) -> list[Wallet]:
        """A user's wallets, oldest first."""
        rows = await self.pool.fetch(
            f"SELECT {WALLET_COLUMNS} FROM accounts WHERE user_id = $1 AND kind = 'wallet' "
            f"ORDER BY created_at, id",
            user_id,
        )
        return [wallet_from_row(row) for row in rows]

    async def wallet_owner(self, wallet_id: str) -> WalletOwner | None:
        """Owner and currency of a wallet: immutable, so callers may cache it."""
        row = await self.pool.fetchrow(
            "SELECT user_id, currency FROM accounts WHERE id = $1 AND kind = 'wallet'", wallet_id
        )
        return None if row is None else WalletOwner(wallet_id, row["user_id"], row["currency"])

    async def wallet_of_user(self, user_id: str, currency: str) -> str | None:
        """The id of a user's wallet in a currency."""
        value: str | None = await self.pool.fetchval(
            "SELECT id FROM accounts WHERE user_id = $1 AND currency = $2 AND kind = 'wallet'",
            user_id,
            currency,
        )
        return value

    # -- transfers ---------------------------------------------------------------------------

    async def transfer(self, transfer_id: str) -> Transfer | None:
        """A transfer by id."""
        row = await self.pool.fetchrow(TRANSFER_DETAIL, transfer_id)
        return None if row is None else transfer_from_row(row)

    # -- idempotency -------------------------------------------------------------------------

    async def stored_answer(self, user_id: str, key: str) -> StoredAnswer | None:
        """The answer first recorded for this user's Idempotency-Key."""
        row = await self.pool.fetchrow(_STORED_ANSWER, user_id, key)
        return None if row is None else _stored_answer(row)

    async def store_answer(
        self, user_id: str, key: str, request_hash: str, status: int, body: dict[str, Any]
    ) -> StoredAnswer | None:
        """Record an answer unless the key has one: None when recorded now, else the first.

        Two statements, not one: when a concurrent transaction holds the key uncommitted, the
        insert waits for it and then does nothing, and only a statement started after that
        commit sees its row.
        """
        try:
            inserted = await self.pool.fetchval(
                "INSERT INTO idempotency_keys (user_id, key, request_hash, status_code, response) "
                "VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING true",
                user_id,
                key,
                request_hash,
                status,
                body,
            )
        except asyncpg.ForeignKeyViolationError:
            raise _no_such_user() from None
        if inserted:
            return None
        return await self.stored_answer(user_id, key)

    async def prune_answers(self, older_than_seconds: float, batch: int = 10_000) -> int:
        """Delete answers recorded longer ago than the retention; how many went."""
        deleted = 0
        while True:
            status = await self.pool.execute(_PRUNE_ANSWERS, float(older_than_seconds), batch)
            count = int(status.rpartition(" ")[2])
            deleted += count
            if count < batch:
                return deleted

    # -- health ------------------------------------------------------------------------------

    async def ping(self) -> None:
        """Round-trip the database."""
        await self.pool.fetchval("SELECT 1")
