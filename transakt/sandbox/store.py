"""The bank's repository over asyncpg, in its own schema: accounts and idempotent transfers
(verifications by micro-deposits and statements: ``transakt.sandbox.verifications``)."""

from __future__ import annotations

import secrets
from typing import Any, cast

import asyncpg

from transakt.bankapi.constants import (
    ACCOUNT_DIGITS,
    ACCOUNT_PREFIX,
    MAX_BALANCE,
)
from transakt.bankapi.models import (
    BankAccount,
    BankTransferResult,
    TransferDirection,
    TransferRequest,
    TransferStatus,
)
from transakt.errors import IdempotencyKeyReused
from transakt.sandbox.errors import AccountExists
from transakt.sandbox.migrations import quote_schema
from transakt.sandbox.verifications import AlreadyStored, VerificationStore, rfc3339

__all__ = ["BankStore", "rfc3339"]

_TRANSFER_COLUMNS = "id, account, direction, amount, currency, status, reason"
_VERIFICATION_COLUMNS = (
    "id, account, given_name, holder_name, currency, first_amount, second_amount, status, "
    "attempts_left, expires_at"
)
_RANDOM = secrets.SystemRandom()


def _transfer(row: asyncpg.Record) -> BankTransferResult:
    return BankTransferResult(
        id=row["id"],
        status=cast(TransferStatus, row["status"]),
        account=row["account"],
        direction=cast(TransferDirection, row["direction"]),
        amount=row["amount"],
        currency=row["currency"],
        reason=row["reason"],
    )


def _new_account_number() -> str:
    return ACCOUNT_PREFIX + "".join(str(secrets.randbelow(10)) for _ in range(ACCOUNT_DIGITS))


class BankStore(VerificationStore):
    """Accounts and transfers of the sandbox bank; every balance change is one transaction."""

    def __init__(self, pool: asyncpg.Pool, schema: str) -> None:
        self._pool = pool
        self._schema = quote_schema(schema)

    def __repr__(self) -> str:
        return f"<BankStore schema={self._schema}>"

    async def create_account(
        self,
        name: str,
        currency: str,
        balance: int,
        *,
        account: str | None = None,
        passcode_hash: str | None = None,
    ) -> BankAccount:
        """Open an account under ``account`` or a fresh random number; returns it.

        Raises AccountExists when the chosen number is taken.
        """
        while True:
            number = account if account is not None else _new_account_number()
            row = await self._pool.fetchrow(
                f"""
                INSERT INTO {self._schema}.accounts
                    (account, name, currency, balance, passcode_hash)
                VALUES ($1, $2, $3, $4, $5)
                ON CONFLICT (account) DO NOTHING
                RETURNING account, name, currency, balance
                """,
                number,
                name,
                currency,
                balance,
                passcode_hash,
            )
            if row is not None:
                return BankAccount(**dict(row))
            if account is not None:
                raise AccountExists("an account with this number exists", account=account)
            # 10**20 numbers make a collision all but impossible; if one happens, draw again.

    async def get_passcode_hash(self, account: str) -> str | None:
        """The stored hash of the holder's passcode; None for no such account or no passcode."""
        value = await self._pool.fetchval(
            f"SELECT passcode_hash FROM {self._schema}.accounts WHERE account = $1", account
        )
        return cast(str | None, value)

    async def get_account(self, account: str) -> BankAccount | None:
        """The account with its current balance, or None."""
        row = await self._pool.fetchrow(
            f"SELECT account, name, currency, balance FROM {self._schema}.accounts "
            "WHERE account = $1",
            account,
        )
        return BankAccount(**dict(row)) if row is not None else None

    async def get_balance(self, account: str) -> int | None:
        """The current balance alone (what changes), or None for an unknown account."""
        balance = await self._pool.fetchval(
            f"SELECT balance FROM {self._schema}.accounts WHERE account = $1", account
        )
        return cast(int | None, balance)

    async def get_transfer(self, transfer_id: str) -> BankTransferResult | None:
        """The stored outcome of a transfer id, or None if the bank never saw it."""
        row = await self._pool.fetchrow(
            f"SELECT {_TRANSFER_COLUMNS} FROM {self._schema}.transfers WHERE id = $1",
            transfer_id,
        )
        return _transfer(row) if row is not None else None

    async def list_transfers(
        self, account: str, *, after: int = 0, limit: int = 1000
    ) -> tuple[list[BankTransferResult], int | None]:
        """One page of an account's transfers in applied order, and the cursor of the next."""
        rows = await self._pool.fetch(
            f"""
            SELECT seq, {_TRANSFER_COLUMNS} FROM {self._schema}.transfers
            WHERE account = $1 AND seq > $2 ORDER BY seq LIMIT $3
            """,
            account,
            after,
            limit + 1,
        )
        page = rows[:limit]
        next_cursor = page[-1]["seq"] if len(rows) > limit else None
        return [_transfer(row) for row in page], next_cursor

    async def apply_transfer(
        self, request: TransferRequest, *, decline: bool = False
    ) -> tuple[BankTransferResult, bool]:
        """Apply a transfer id once: its outcome, and True if this call stored it (not a replay).

        ``decline`` (the ``refusing`` outage mode) stores a new id as rejected, reason
        ``declined``, whatever the account holds; a replay still answers its stored outcome.

        Raises IdempotencyKeyReused when the id was stored with a different request.
        """
        stored = await self.get_transfer(request.id)
        if stored is None:
            try:
                return await self._apply_new(request, decline), True
            except AlreadyStored:
                pass
            # A concurrent request with this id committed first; its outcome is the answer.
            stored = await self.get_transfer(request.id)
            if stored is None:  # the conflicting row is committed, so this cannot happen
                raise RuntimeError(f"transfer {request.id!r} conflicted but is not stored")
        if not request.matches(stored):
            raise IdempotencyKeyReused(
                "this transfer id was already used for a different transfer", id=request.id
            )
        return stored, False

    async def _apply_new(self, request: TransferRequest, decline: bool) -> BankTransferResult:
        async with self._pool.acquire() as connection, connection.transaction():
            # The row lock serialises every transfer on this account, so the balance read
            # below is still true when the update commits.
            account = await connection.fetchrow(
                f"SELECT currency, balance FROM {self._schema}.accounts "
                "WHERE account = $1 FOR UPDATE",
                request.account,
            )
            reason = "declined" if decline else _refusal(request, account)
            row = await connection.fetchrow(
                f"""
                INSERT INTO {self._schema}.transfers
                    (id, account, direction, amount, currency, status, reason)
                VALUES ($1, $2, $3, $4, $5, $6, $7)
                ON CONFLICT (id) DO NOTHING
                RETURNING {_TRANSFER_COLUMNS}
                """,
                request.id,
                request.account,
                request.direction,
                request.amount,
                request.currency,
                "rejected" if reason else "completed",
                reason,
            )
            if row is None:
                raise AlreadyStored
            if reason is None:
                delta = request.amount if request.direction == "credit" else -request.amount
                await connection.execute(
                    f"UPDATE {self._schema}.accounts SET balance = balance + $2 WHERE account = $1",
                    request.account,
                    delta,
                )
            return _transfer(row)


def _refusal(request: TransferRequest, account: Any) -> str | None:
    """Why the bank refuses this transfer on this account (None: it applies)."""
    if account is None:
        return "account_not_found"
    if account["currency"] != request.currency:
        return "currency_mismatch"
    if request.direction == "debit" and account["balance"] < request.amount:
        return "insufficient_funds"
    if request.direction == "credit" and account["balance"] + request.amount > MAX_BALANCE:
        return "balance_limit_exceeded"
    return None
