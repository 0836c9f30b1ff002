"""Online banking for account holders: passcodes, HTTP Basic credentials and their throttle.

A passcode is drawn by the bank (or chosen by whoever opens the account) and shown once; the
bank keeps a salted SHA-256 of it. That is enough because passcodes are high-entropy strings,
not passwords people pick, and because guessing is throttled: more than
``PASSCODE_FAILURE_LIMIT`` wrong passcodes for one account within the window, and the account
answers 429 until the oldest of them leaves the window. The count lives in this process, which
is enough for a sandbox.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import math
import re
import secrets
import time
from collections import deque
from collections.abc import Callable
from typing import Final

from aiohttp import web

from transakt.bankapi.constants import (
    CHOSEN_ACCOUNT_PATTERN,
    MAX_PASSCODE_LENGTH,
    MIN_PASSCODE_LENGTH,
    PASSCODE_FAILURE_LIMIT,
    PASSCODE_FAILURE_WINDOW_SECONDS,
)
from transakt.errors import RateLimited
from transakt.sandbox.errors import HolderUnauthorized

__all__ = [
    "PasscodeThrottle",
    "basic_credentials",
    "hash_passcode",
    "is_valid_passcode",
    "new_passcode",
    "passcode_matches",
]

_SCHEME: Final = "sha256"
_SALT_BYTES: Final = 16
_ACCOUNT = re.compile(CHOSEN_ACCOUNT_PATTERN)
# Compared against when an account has no passcode, so that answer takes as long as the others.
_NO_HASH: Final = f"{_SCHEME}${'00' * _SALT_BYTES}${'00' * 32}"


def new_passcode() -> str:
    """A fresh passcode: 12 URL-safe characters, 72 random bits."""
    return secrets.token_urlsafe(9)


def is_valid_passcode(value: object) -> bool:
    """True for 8-128 characters of printable ASCII (space to tilde)."""
    return (
        isinstance(value, str)
        and MIN_PASSCODE_LENGTH <= len(value) <= MAX_PASSCODE_LENGTH
        and all(" " <= char <= "~" for char in value)
    )


def _digest(salt: bytes, passcode: str) -> bytes:
    return hashlib.sha256(salt + passcode.encode("utf-8")).digest()


def hash_passcode(passcode: str) -> str:
    """What the bank stores: ``sha256$<salt hex>$<digest hex>``."""
    salt = secrets.token_bytes(_SALT_BYTES)
    return f"{_SCHEME}${salt.hex()}${_digest(salt, passcode).hex()}"


def passcode_matches(passcode: str, stored: str | None) -> bool:
    """True when ``passcode`` is the one ``stored`` was made from; never for no stored hash."""
    scheme, _, rest = (stored or _NO_HASH).partition("$")
    salt_hex, _, digest_hex = rest.partition("$")
    try:
        salt, digest = bytes.fromhex(salt_hex), bytes.fromhex(digest_hex)
    except ValueError:
        return False
    same = hmac.compare_digest(_digest(salt, passcode), digest)
    return same and scheme == _SCHEME and stored is not None


def basic_credentials(request: web.Request) -> tuple[str, str]:
    """The account number and passcode of an ``Authorization: Basic`` header.

    Raises HolderUnauthorized when the header is missing or malformed, or names something that
    cannot be an account number: none of those can be anyone's right passcode.
    """
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        raise HolderUnauthorized(
            "log in with your account number and passcode (HTTP Basic authentication)"
        )
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise HolderUnauthorized("malformed Basic credentials") from None
    account, colon, passcode = decoded.partition(":")
    if not colon or not _ACCOUNT.fullmatch(account) or not is_valid_passcode(passcode):
        raise HolderUnauthorized("wrong account number or passcode")
    return account, passcode


class PasscodeThrottle:
    """Counts wrong passcodes per account over a sliding window, in this process.

    An attempt is counted as wrong when it starts (:meth:`reserve`) and taken back when it
    succeeds (:meth:`release`), so that a burst of concurrent guesses cannot slip past the
    limit while their look-ups are in flight.
    """

    def __init__(
        self,
        limit: int = PASSCODE_FAILURE_LIMIT,
        window: float = PASSCODE_FAILURE_WINDOW_SECONDS,
        *,
        max_accounts: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limit = limit
        self._window = window
        self._max_accounts = max_accounts
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def __repr__(self) -> str:
        return f"<PasscodeThrottle {self._limit}/{self._window:g}s tracking={len(self._failures)}>"

    def reserve(self, account: str) -> float:
        """Count an attempt on ``account`` as wrong until released; RateLimited over the limit.

        Returns the attempt's stamp, for :meth:`release`.
        """
        now = self._clock()
        failures = self._recent(account, now)
        if len(failures) >= self._limit:
            retry_after = max(1, math.ceil(failures[0] + self._window - now))
            raise RateLimited(
                "too many wrong passcodes for this account; try again later",
                retry_after=retry_after,
                limit=self._limit,
                window=math.ceil(self._window),
            )
        if account not in self._failures:
            self._make_room(now)
            self._failures[account] = failures
        failures.append(now)
        return now

    def release(self, account: str, stamp: float) -> None:
        """Take back an attempt that turned out right (or could not be decided)."""
        failures = self._failures.get(account)
        if failures is None:
            return
        with contextlib.suppress(ValueError):  # already out of the window
            failures.remove(stamp)
        if not failures:
            del self._failures[account]

    def clear(self) -> None:
        """Forget every count (tests, sandbox resets)."""
        self._failures.clear()

    def _recent(self, account: str, now: float) -> deque[float]:
        failures = self._failures.get(account, deque())
        while failures and failures[0] <= now - self._window:
            failures.popleft()
        return failures

    def _make_room(self, now: float) -> None:
        if len(self._failures) < self._max_accounts:
            return
        # Drop counts that have aged out; if guesses at many accounts still fill the table,
        # drop the accounts tracked longest (a bounded table beats an unbounded one).
        for account in [known for known in self._failures if not self._recent(known, now)]:
            del self._failures[account]
        while len(self._failures) >= self._max_accounts:
            del self._failures[next(iter(self._failures))]
