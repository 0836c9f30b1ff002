"""Account verification by micro-deposits, and the holder's statement: the store's second half."""

from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import UTC, datetime
from typing import cast

import asyncpg

from transakt.bankapi.constants import (
    CREDIT_DESCRIPTION,
    DEBIT_DESCRIPTION,
    MICRO_DEPOSIT_DESCRIPTION,
    MICRO_DEPOSIT_MAX,
    MICRO_DEPOSIT_MIN,
    VERIFICATION_ATTEMPTS,
)
from transakt.bankapi.models import (
    AccountVerification,
    Statement,
    StatementEntry,
    VerificationStatus,
)
from transakt.errors import IdempotencyKeyReused, NotFound
from transakt.sandbox.errors import NameMismatch
from transakt.text import names_match

__all__ = ["AlreadyStored", "VerificationStore", "rfc3339"]

_VERIFICATION_COLUMNS = (
    "id, account, given_name, holder_name, currency, first_amount, second_amount, status, "
    "attempts_left, expires_at"
)
_RANDOM = secrets.SystemRandom()


class AlreadyStored(Exception):
    """Another transaction stored this transfer id first; ours must roll back."""


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


class VerificationStore:
    """Micro-deposit verifications and statements; BankStore inherits them (same pool)."""

    _pool: asyncpg.Pool
    _schema: str

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
            except AlreadyStored:
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
                raise AlreadyStored
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
