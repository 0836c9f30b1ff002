"""People: sign-up with a bank account the bank vouches for, login, logout, password change.

Sign-up checks, in this order, so that each answer costs the asker what it reveals: the
client's address is throttled; the bank must know the account and find the name given to be
its holder's (one answer for "no such account" and "not that holder", so the sign-up form is no
oracle for whose account is whose); only then is the e-mail looked up (``email_taken``) and the
account checked against other users (``bank_account_taken``). The user's name is the holder's
name as the bank holds it: what counterparties see was verified, not typed. The account is not
linked yet (see :mod:`transakt.services.bank_links`) and the address not verified (see
:mod:`transakt.services.email_verification`): both proofs start here.

Login spends the same effort whether the e-mail exists or not, and refuses with one answer.
Failed logins are throttled per (e-mail, address), so an attacker cannot lock the real user
out from elsewhere, and all logins per address, against guessing across many accounts.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from transakt.bankapi.errors import BankRequestRejected
from transakt.errors import (
    BankAccountInvalid,
    BankAccountTaken,
    BankUnavailable,
    EmailTaken,
    Forbidden,
    NotFound,
    Unauthorized,
)
from transakt.gateway.asks import BankAsks
from transakt.ids import uuid4_hex
from transakt.models import User, Wallet
from transakt.services.bank_links import BankLinks
from transakt.services.email_verification import EmailVerification
from transakt.services.passwords import hash_password, verify_password
from transakt.services.sessions import Sessions
from transakt.services.throttle import Throttle
from transakt.storage import trust
from transakt.storage.repository import Repository
from transakt.storage.trust import BankLink

__all__ = ["Accounts", "SignedUp"]

_NOT_CONFIRMED = "the bank could not confirm this account in this name"


@dataclass(frozen=True, slots=True)
class SignedUp:
    """A new user, their first wallet, and where the proof of their bank account stands."""

    user: User
    wallets: list[Wallet]
    bank_link: BankLink


class Accounts:
    """Sign-up, login, logout and password changes."""

    def __init__(
        self,
        repository: Repository,
        pool: asyncpg.Pool,
        bank: BankAsks,
        throttle: Throttle,
        links: BankLinks,
        emails: EmailVerification,
        sessions: Sessions,
    ) -> None:
        self._repository = repository
        self._pool = pool
        self._bank = bank
        self._throttle = throttle
        self._links = links
        self._emails = emails
        self._sessions = sessions

    def __repr__(self) -> str:
        return f"<Accounts {self._sessions!r}>"

    async def signup(
        self, email: str, password: str, name: str, bank_account: str, client: str
    ) -> SignedUp:
        """Create a user whose bank vouches for account and name; start both proofs."""
        await self._throttle.hit("signup_ip", client)
        try:
            account = await self._bank.verify(bank_account, name)
        except BankRequestRejected:
            account = None  # the bank refused the details themselves: not confirmed either
        if account is None or not account.name_matches:
            raise BankAccountInvalid(_NOT_CONFIRMED, field="bank_account")
        if await self._repository.user_id_by_email(email) is not None:
            raise EmailTaken("an account with this e-mail exists", field="email")
        if await trust.link_holder_conflict(self._pool, account.account, "", email) is not None:
            raise BankAccountTaken(
                "this bank account backs another user; its holder can approve you from their "
                "account",
                field="bank_account",
            )
        password_hash = await hash_password(password)
        async with self._pool.acquire() as connection, connection.transaction():
            user, wallet = await self._repository.create_user(
                connection,
                user_id=f"usr_{uuid4_hex()}",
                email=email,
                name=account.name,
                password_hash=password_hash,
                bank_account=account.account,
                wallet_id=f"wal_{uuid4_hex()}",
                currency=account.currency,
                settlement_id=f"settlement_{account.currency}",
            )
            await trust.create_link(connection, user.id, account.currency)
            await self._emails.issue(connection, user)
        try:
            link = await self._links.start(user, throttled=False)
        except (BankUnavailable, BankAccountInvalid):
            # The user exists and can start the verification later, once the bank answers.
            link = await self._links.status(user.id)
        return SignedUp(user=user, wallets=[wallet], bank_link=link)

    async def login(self, email: str, password: str, client: str) -> User:
        """The user whose e-mail and password these are; one error for every mismatch."""
        await self._throttle.hit("login_ip", client)
        await self._throttle.hit("login_account", email, client)
        found = await self._repository.user_by_email(email)
        ok = await verify_password(found[1] if found else None, password)
        if found is None or not ok:
            raise Unauthorized("e-mail or password is wrong")
        await self._throttle.clear("login_account", email, client)
        return found[0]

    async def user(self, user_id: str) -> User:
        """The user behind a token; a token of a user the database lacks is no credential."""
        user = await self._repository.user(user_id)
        if user is None:
            raise Unauthorized("the access token is invalid")
        return user

    async def logout(self, user_id: str, jti: str, expires_at: float) -> None:
        """End this token now."""
        await self._sessions.revoke(user_id, jti, expires_at)

    async def change_password(self, user_id: str, current: str, new: str) -> User:
        """Replace the password and end every token issued before; the user after."""
        await self._throttle.hit("password_user", user_id)
        if not await verify_password(await self._repository.password_hash_of(user_id), current):
            raise Forbidden("the current password is wrong", field="current_password")
        version = await trust.set_password(self._pool, user_id, await hash_password(new))
        self._sessions.versioned(user_id, version)
        user = await self._repository.user(user_id)
        if user is None:
            raise NotFound("no such user")
        return user
