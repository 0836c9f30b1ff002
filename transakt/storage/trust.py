"""SQL of trust: bank-account links and approvals, e-mail codes, ended sessions.

No rules here, only reads and writes: what a proof means, and when to ask for one, is decided
by the services (``transakt.services.bank_links``, ``.email_verification``, ``.sessions``).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal, cast

import asyncpg

from transakt.errors import Unauthorized
from transakt.models import BankLink, LinkStatus
from transakt.storage.typing import Connection

__all__ = [
    "BankLink",
    "CodeCheck",
    "approve_link",
    "bank_link",
    "confirm_email_code",
    "create_link",
    "issue_email_code",
    "link_holder_conflict",
    "load_revocations",
    "mark_linked",
    "prune_revocations",
    "revoke_token",
    "set_password",
    "update_link",
]


_LINK = """
SELECT l.user_id, u.bank_account, l.currency, l.status, l.verification_id, l.attempts_left,
       l.expires_at, l.linked_at
FROM bank_links AS l JOIN users AS u ON u.id = l.user_id
WHERE l.user_id = $1
"""
# Another user linked to this account, unless the holder approved this e-mail.
_HOLDER_CONFLICT = """
SELECT u.id FROM users AS u JOIN bank_links AS l ON l.user_id = u.id
WHERE u.bank_account = $1 AND l.status = 'linked' AND u.id <> $2
  AND NOT EXISTS (SELECT FROM bank_link_approvals AS a
                  WHERE a.bank_account = $1 AND a.email = $3)
LIMIT 1
"""
_UPDATE_LINK = """
UPDATE bank_links
SET status = $2, verification_id = $3, attempts_left = $4, expires_at = $5,
    started_at = coalesce($6, started_at)
WHERE user_id = $1 AND status <> 'linked'
"""
_MARK_LINKED = """
UPDATE bank_links SET status = 'linked', linked_at = now(), attempts_left = NULL
WHERE user_id = $1 AND status <> 'linked'
"""
_APPROVE = """
INSERT INTO bank_link_approvals (bank_account, email, approved_by) VALUES ($1, $2, $3)
ON CONFLICT (bank_account, email) DO NOTHING
"""
_ISSUE_CODE = """
INSERT INTO email_verifications (user_id, code_hash, attempts_left, expires_at)
VALUES ($1, $2, $3, now() + make_interval(secs => $4))
ON CONFLICT (user_id) DO UPDATE
SET code_hash = EXCLUDED.code_hash, attempts_left = EXCLUDED.attempts_left,
    expires_at = EXCLUDED.expires_at, sent_at = now()
RETURNING expires_at
"""
_CODE_MAIL = """
INSERT INTO mail_deliveries (event_id, recipient, template, to_address, to_name, transfer)
VALUES ($1, $2, 'verify_email', $3, $4, $5)
"""
# Wakes every process's mailers through the outbox's NOTIFY; the code itself stays out of the
# outbox, whose events travel further (live feeds, and outside subscribers).
_WAKE_MAILERS = """
INSERT INTO outbox (event_id, topic, payload) VALUES ($1, 'mail.queued', $2)
"""
_LOCK_CODE = """
SELECT code_hash, attempts_left, expires_at < now() AS expired
FROM email_verifications WHERE user_id = $1 FOR UPDATE
"""
_REVOKE = """
INSERT INTO revoked_tokens (jti, user_id, expires_at) VALUES ($1, $2, to_timestamp($3))
ON CONFLICT DO NOTHING
"""
_LOAD_REVOKED = (
    "SELECT jti, extract(epoch FROM expires_at)::float8 AS exp FROM revoked_tokens "
    "WHERE expires_at > now()"
)
_LOAD_VERSIONS = "SELECT id, token_version FROM users WHERE token_version > 0"
_PRUNE_REVOKED = "DELETE FROM revoked_tokens WHERE expires_at < now()"
_SET_PASSWORD = """
UPDATE users SET password_hash = $2, token_version = token_version + 1
WHERE id = $1 RETURNING token_version
"""

CodeCheck = Literal["verified", "wrong", "expired", "none"]


async def bank_link(connection: Connection | asyncpg.Pool, user_id: str) -> BankLink | None:
    """The user's link, if they have one."""
    row = await connection.fetchrow(_LINK, user_id)
    if row is None:
        return None
    return BankLink(
        user_id=row["user_id"],
        bank_account=row["bank_account"],
        currency=row["currency"],
        status=cast(LinkStatus, row["status"]),
        verification_id=row["verification_id"],
        attempts_left=row["attempts_left"],
        expires_at=row["expires_at"],
        linked_at=row["linked_at"],
    )


async def create_link(connection: Connection, user_id: str, currency: str) -> None:
    """A new user's link: pending until they prove the account is theirs."""
    await connection.execute(
        "INSERT INTO bank_links (user_id, currency, status) VALUES ($1, $2, 'pending')",
        user_id,
        currency,
    )


async def link_holder_conflict(
    connection: Connection | asyncpg.Pool, bank_account: str, user_id: str, email: str
) -> str | None:
    """The user already linked to this account without approving ``email``, if any."""
    value: str | None = await connection.fetchval(_HOLDER_CONFLICT, bank_account, user_id, email)
    return value


async def update_link(
    connection: Connection | asyncpg.Pool,
    user_id: str,
    *,
    status: LinkStatus,
    verification_id: str | None,
    attempts_left: int | None,
    expires_at: datetime | None,
    started: datetime | None = None,
) -> None:
    """Record the state of the user's verification (a linked account stays linked)."""
    await connection.execute(
        _UPDATE_LINK, user_id, status, verification_id, attempts_left, expires_at, started
    )


async def mark_linked(pool: asyncpg.Pool, user_id: str, bank_account: str, email: str) -> bool:
    """Link the account, unless another user holds it unapproved: False then.

    The check and the write happen under a transaction-scoped lock on the account number, so
    two users proving the same account at once cannot both end up linked.
    """
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('bank_link:' || $1, 0))", bank_account
        )
        if await link_holder_conflict(connection, bank_account, user_id, email) is not None:
            return False
        await connection.execute(_MARK_LINKED, user_id)
    return True


async def approve_link(pool: asyncpg.Pool, bank_account: str, email: str, approved_by: str) -> None:
    """Let the user with ``email`` link ``bank_account`` too."""
    await pool.execute(_APPROVE, bank_account, email, approved_by)


async def issue_email_code(
    connection: Connection,
    *,
    user_id: str,
    email: str,
    name: str,
    code_hash: str,
    code: str,
    ttl_seconds: float,
    attempts: int,
) -> datetime:
    """Replace the user's code and queue the mail carrying it; the code's expiry."""
    expires_at: datetime = await connection.fetchval(
        _ISSUE_CODE, user_id, code_hash, attempts, float(ttl_seconds)
    )
    event_id = f"verify:{uuid.uuid4().hex}"
    mail: dict[str, Any] = {
        "code": code,
        "expires_at": expires_at.isoformat(),
        "sent_at": datetime.now(UTC).isoformat(),
    }
    await connection.execute(_CODE_MAIL, event_id, user_id, email, name, mail)
    await connection.execute(_WAKE_MAILERS, event_id, {"user_id": user_id})
    return expires_at


async def confirm_email_code(
    pool: asyncpg.Pool, user_id: str, code_hash: str
) -> tuple[CodeCheck, int]:
    """Spend one try of the user's code: the outcome, and the tries left after it."""
    async with pool.acquire() as connection, connection.transaction():
        row = await connection.fetchrow(_LOCK_CODE, user_id)
        if row is None:
            return "none", 0
        if row["expired"]:
            await connection.execute("DELETE FROM email_verifications WHERE user_id = $1", user_id)
            return "expired", 0
        if row["code_hash"] == code_hash:
            await connection.execute(
                "UPDATE users SET email_verified_at = now() WHERE id = $1", user_id
            )
            await connection.execute("DELETE FROM email_verifications WHERE user_id = $1", user_id)
            return "verified", 0
        left = int(row["attempts_left"]) - 1
        if left <= 0:
            await connection.execute("DELETE FROM email_verifications WHERE user_id = $1", user_id)
        else:
            await connection.execute(
                "UPDATE email_verifications SET attempts_left = $2 WHERE user_id = $1",
                user_id,
                left,
            )
        return "wrong", max(left, 0)


async def revoke_token(pool: asyncpg.Pool, jti: str, user_id: str, expires_at: float) -> None:
    """Record a logged-out token until its expiry (its NOTIFY tells the other nodes)."""
    try:
        await pool.execute(_REVOKE, jti, user_id, expires_at)
    except asyncpg.ForeignKeyViolationError:
        # A validly signed token naming a user the database does not hold is no credential.
        raise Unauthorized("the access token is invalid") from None


async def load_revocations(
    connection: Connection,
) -> tuple[dict[str, float], dict[str, int]]:
    """Unexpired revoked tokens (jti -> expiry) and users' token versions above 0."""
    revoked = await connection.fetch(_LOAD_REVOKED)
    versions = await connection.fetch(_LOAD_VERSIONS)
    return (
        {row["jti"]: row["exp"] for row in revoked},
        {row["id"]: row["token_version"] for row in versions},
    )


async def prune_revocations(pool: asyncpg.Pool) -> int:
    """Delete revoked tokens that have expired anyway; how many."""
    status = await pool.execute(_PRUNE_REVOKED)
    return int(status.rpartition(" ")[2])


async def set_password(pool: asyncpg.Pool, user_id: str, password_hash: str) -> int:
    """Store a new password hash and end every token issued before: the new token version."""
    version: int = await pool.fetchval(_SET_PASSWORD, user_id, password_hash)
    return version
