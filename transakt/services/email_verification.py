"""Verified e-mail: an address receives payments only once its holder read a code sent there.

At signup (and whenever the user asks for a new one) a six-digit code is mailed to the address;
only its hash is stored, with an expiry and a few tries. Typing it in marks the address
verified. Guessing is bounded three ways: each code allows ``attempts`` tries, codes typed in
are throttled per user, and so are requests for new codes.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from transakt.errors import VerificationFailed
from transakt.models import User
from transakt.services.throttle import Throttle
from transakt.storage import trust
from transakt.storage.typing import Connection

__all__ = ["CODE_DIGITS", "EmailVerification", "IssuedCode"]

CODE_DIGITS = 6


@dataclass(frozen=True, slots=True)
class IssuedCode:
    """A code just mailed: when it expires."""

    expires_at: datetime


def _code_hash(user_id: str, code: str) -> str:
    # The user id salts the hash, so equal codes of two users do not hash alike. (Six digits
    # are guessable offline whatever the hash: the tries, not the hash, protect a code.)
    return hashlib.sha256(f"{user_id}\x00{code}".encode()).hexdigest()


class EmailVerification:
    """Mails codes and checks them."""

    def __init__(
        self, pool: asyncpg.Pool, throttle: Throttle, *, ttl_seconds: float, attempts: int
    ) -> None:
        self._pool = pool
        self._throttle = throttle
        self._ttl = ttl_seconds
        self._attempts = attempts

    def __repr__(self) -> str:
        return f"<EmailVerification ttl={self._ttl:.0f}s attempts={self._attempts}>"

    async def issue(self, connection: Connection, user: User) -> IssuedCode:
        """Mail a fresh code (in the caller's transaction, so signup and code commit together)."""
        code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
        expires_at = await trust.issue_email_code(
            connection,
            user_id=user.id,
            email=user.email,
            name=user.name,
            code_hash=_code_hash(user.id, code),
            code=code,
            ttl_seconds=self._ttl,
            attempts=self._attempts,
        )
        return IssuedCode(expires_at)

    async def resend(self, user: User) -> IssuedCode | None:
        """Mail a new code (throttled); None when the address is verified already."""
        if user.email_verified:
            return None
        await self._throttle.hit("email_resend_user", user.id)
        async with self._pool.acquire() as connection, connection.transaction():
            return await self.issue(connection, user)

    async def confirm(self, user: User, code: str) -> bool:
        """Check a code: True once verified (now or before); VerificationFailed otherwise."""
        if user.email_verified:
            return True
        await self._throttle.hit("email_code_user", user.id)
        candidate = _code_hash(user.id, code.strip())
        outcome, left = await trust.confirm_email_code(self._pool, user.id, candidate)
        if outcome == "verified":
            return True
        if outcome == "wrong" and left > 0:
            raise VerificationFailed(
                "that is not the code we sent", field="code", attempts_left=left
            )
        raise VerificationFailed(
            "this code can no longer be used; ask for a new one", field="code", attempts_left=0
        )
