"""The bank's repository over asyncpg: accounts, idempotent transfers, account verifications
by micro-deposits and the holder's statement, in its own schema."""

from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, cast

import asyncpg

from transakt.bankapi.constants import (
    ACCOUNT_DIGITS,
    ACCOUNT_PREFIX,
    CREDIT_DESCRIPTION,
    DEBIT_DESCRIPTION,
    MAX_BALANCE,
    MICRO_DEPOSIT_DESCRIPTION,
    MICRO_DEPOSIT_MAX,
    MICRO_DEPOSIT_MIN,
    VERIFICATION_ATTEMPTS,
)
from transakt.bankapi.models import (
    AccountVerification,
    BankAccount,
    BankTransferResult,
    Statement,
    StatementEntry,
    TransferDirection,
    TransferRequest,
    TransferStatus,
    VerificationStatus,
)
from transakt.errors import IdempotencyKeyReused, NotFound
from transakt.sandbox.errors import AccountExists, NameMismatch
from transakt.sandbox.migrations import quote_schema
from transakt.text import names_match

__all__ = ["BankStore", "rfc3339"]

_TRANSFER_COLUMNS = "id, account, direction, amount, currency, status, reason"
_VERIFICATION_COLUMNS = (
    "id, account, given_name, holder_name, currency, first_amount, second_amount, status, "
    "attempts_left, expires_at"
)
_RANDOM = secrets.SystemRandom()


class _AlreadyStored(Exception):
    """Another transaction stored this transfer id first; ours must roll back."""


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


def rfc3339(moment: datetime) -> str:
    """A timestamp as RFC 3339 in UTC to the millisecond: ``2026-12-03T13:37:39.123Z``."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _verification(row: asyncpg.Record) -> AccountVerification:
    return AccountVerification(
        id=row["id"],
        account=row["account"],
        name=row["holder_name"],
        currency=row["currency"],
        status=cast(VerificationStatus, row["status"]),
        attempts_left=row["attempts_left"],
        expires_at=rfc3339(row["expires_at"]),
    )


def _micro_deposit_amounts() -> tuple[int, int]:
    first, second = _RANDOM.sample(range(MICRO_DEPOSIT_MIN, MICRO_DEPOSIT_MAX + 1), 2)
    return first, second


def _new_account_number() -> str:
    return ACCOUNT_PREFIX + "".join(str(secrets.randbelow(10)) for _ in range(ACCOUNT_DIGITS))


class BankStore:
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

    async def apply_transfer(self, request: TransferRequest) -> tuple[BankTransferResult, bool]:
        """Apply a transfer id once: its outcome, and True if this call stored it (not a replay).

        Raises IdempotencyKeyReused when the id was stored with a different request.
        """
        stored = await self.get_transfer(request.id)
        if stored is None:
            try:
                return await self._apply_new(request), True
            except _AlreadyStored:
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

    async def _apply_new(self, request: TransferRequest) -> BankTransferResult:
        async with self._pool.acquire() as connection, connection.transaction():
            # The row lock serialises every transfer on this account, so the balance read
            # below is still true when the update commits.
            account = await connection.fetchrow(
                f"SELECT currency, balance FROM {self._schema}.accounts "
                "WHERE account = $1 FOR UPDATE",
                request.account,
            )
            reason = _refusal(request, account)
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
                raise _AlreadyStored
            if reason is None:
                delta = request.amount if request.direction == "credit" else -request.amount
                await connection.execute(
                    f"UPDATE {self._schema}.accounts SET balance = balance + $2 WHERE account = $1",
                    request.account,
                    delta,
                )
            return _transfer(row)

    # -- account verification by micro-deposits ------------------------------------------------

    async def start_verification(
        self, id: str, account: str, name: str, ttl: float
    ) -> tuple[AccountVerification, bool]:
        """Send two micro-deposits to prove control of ``account``, once per id.

        Returns the verification and True if this call started it (False: a replay, answered
        as it stands now). Raises NotFound for an unknown account, NameMismatch when ``name``
        is not the holder's, IdempotencyKeyReused when the id was used for another request.
        """
        for _ in range(2):
            stored = await self._stored_verification(id, account, name)
            if stored is not None:
                return stored, False
            try:
                return await self._start_new(id, account, name, ttl), True
            except _AlreadyStored:
                # A concurrent request with this id committed first; its record is the answer.
                continue
        raise RuntimeError(f"verification {id!r} conflicted but is not stored")

    async def _stored_verification(
        self, id: str, account: str, name: str
    ) -> AccountVerification | None:
        row = await self._pool.fetchrow(
            f"SELECT account, given_name FROM {self._schema}.verifications WHERE id = $1", id
        )
        if row is None:
            return None
        if (row["account"], row["given_name"]) != (account, name):
            raise IdempotencyKeyReused(
                "this verification id was already used for a different account or name", id=id
            )
        return await self.get_verification(id)

    async def _start_new(self, id: str, account: str, name: str, ttl: float) -> AccountVerification:
        first, second = _micro_deposit_amounts()
        async with self._pool.acquire() as connection, connection.transaction():
            # Locked like a transfer's account: the balance update below serialises with them.
            holder = await connection.fetchrow(
                f"SELECT name, currency FROM {self._schema}.accounts WHERE account = $1 FOR UPDATE",
                account,
            )
            if holder is None:
                raise NotFound("no such account", account=account)
            if not names_match(name, holder["name"]):
                raise NameMismatch(
                    "the name given is not the account holder's", field="name", account=account
                )
            row = await connection.fetchrow(
                f"""
                INSERT INTO {self._schema}.verifications
                    (id, account, given_name, holder_name, currency, first_amount,
                     second_amount, status, attempts_left, expires_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8,
                        date_trunc('milliseconds', now() + make_interval(secs => $9)))
                ON CONFLICT (id) DO NOTHING
                RETURNING {_VERIFICATION_COLUMNS}
                """,
                id,
                account,
                name,
                holder["name"],
                holder["currency"],
                first,
                second,
                VERIFICATION_ATTEMPTS,
                ttl,
            )
            if row is None:
                raise _AlreadyStored
            await connection.executemany(
                f"INSERT INTO {self._schema}.micro_deposits "
                "(verification, account, amount, currency) VALUES ($1, $2, $3, $4)",
                [(id, account, amount, holder["currency"]) for amount in (first, second)],
            )
            await connection.execute(
                f"UPDATE {self._schema}.accounts SET balance = balance + $2 WHERE account = $1",
                account,
                first + second,
            )
            return _verification(row)

    async def get_verification(self, id: str) -> AccountVerification | None:
        """The verification as it stands now (a pending one past its expiry is expired)."""
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute(
                f"""
                UPDATE {self._schema}.verifications
                SET status = 'expired', updated_at = now()
                WHERE id = $1 AND status = 'pending' AND expires_at <= now()
                """,
                id,
            )
            row = await connection.fetchrow(
                f"SELECT {_VERIFICATION_COLUMNS} FROM {self._schema}.verifications WHERE id = $1",
                id,
            )
        return _verification(row) if row is not None else None

    async def confirm_verification(
        self, id: str, amounts: tuple[int, int]
    ) -> AccountVerification | None:
        """Check the holder's amounts (in any order) against a pending verification.

        Right: verified. Wrong: one attempt fewer, failed at none left. Past its expiry: expired.
        A verification no longer pending answers as it is and consumes nothing. None: unknown.
        """
        async with self._pool.acquire() as connection, connection.transaction():
            # The row lock makes concurrent confirmations take their turns: attempts are
            # counted one by one and never go below zero.
            row = await connection.fetchrow(
                f"SELECT {_VERIFICATION_COLUMNS}, expires_at <= now() AS past "
                f"FROM {self._schema}.verifications WHERE id = $1 FOR UPDATE",
                id,
            )
            if row is None:
                return None
            if row["status"] != "pending":
                return _verification(row)
            attempts_left: int = row["attempts_left"]
            status: VerificationStatus
            if row["past"]:
                status = "expired"
            elif sorted(amounts) == sorted((row["first_amount"], row["second_amount"])):
                status = "verified"
            else:
                attempts_left -= 1
                status = "failed" if attempts_left == 0 else "pending"
            await connection.execute(
                f"""
                UPDATE {self._schema}.verifications
                SET status = $2, attempts_left = $3, updated_at = now()
                WHERE id = $1
                """,
                id,
                status,
                attempts_left,
            )
            return replace(_verification(row), status=status, attempts_left=attempts_left)

    # -- the holder's statement -----------------------------------------------------------------

    async def statement(self, account: str, limit: int) -> Statement | None:
        """The account's balance and its newest ``limit`` entries, newest first (None: unknown).

        Entries are the completed transfers (a debit is the wallet pulling money in, a credit a
        payout) and the micro-deposits; refused transfers moved nothing and are not shown.
        """
        async with (
            self._pool.acquire() as connection,
            connection.transaction(isolation="repeatable_read", readonly=True),
        ):
            # One snapshot, so that the balance and the entries tell the same story.
            holder = await connection.fetchrow(
                f"SELECT account, name, currency, balance FROM {self._schema}.accounts "
                "WHERE account = $1",
                account,
            )
            if holder is None:
                return None
            rows = await connection.fetch(
                f"""
                SELECT * FROM (
                    (SELECT 'transfer' AS kind, seq, created_at, direction, amount
                     FROM {self._schema}.transfers
                     WHERE account = $1 AND status = 'completed'
                     ORDER BY created_at DESC, seq DESC LIMIT $2)
                    UNION ALL
                    (SELECT 'microdeposit', seq, created_at, 'credit', amount
                     FROM {self._schema}.micro_deposits
                     WHERE account = $1
                     ORDER BY created_at DESC, seq DESC LIMIT $2)
                ) AS entries
                ORDER BY created_at DESC, seq DESC
                LIMIT $2
                """,
                account,
                limit,
            )
        return Statement(
            account=holder["account"],
            name=holder["name"],
            currency=holder["currency"],
            balance=holder["balance"],
            entries=tuple(_entry(row) for row in rows),
        )


def _entry(row: asyncpg.Record) -> StatementEntry:
    if row["kind"] == "microdeposit":
        description = MICRO_DEPOSIT_DESCRIPTION
    elif row["direction"] == "debit":
        description = DEBIT_DESCRIPTION
    else:
        description = CREDIT_DESCRIPTION
    sign = -1 if row["direction"] == "debit" else 1
    return StatementEntry(
        id=f"{row['kind']}-{row['seq']}",
        at=rfc3339(row["created_at"]),
        description=description,
        amount=sign * row["amount"],
    )


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
