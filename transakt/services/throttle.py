"""Throttling of what can be guessed or abused, with the ``limits`` library over Redis.

Every rule is a list of limits, each a count per window ("5/minute;20/hour"), on a key made of
what the rule is about (an IP address, an e-mail and an IP, a user). A moving window counts
exactly; several windows of growing length give an exponential lockout: five wrong passwords
lock a login for up to a minute, ten for up to ten minutes, and so on, and each lock ends by
itself. The counts live in Redis, so every node sees the same ones; without Redis (tests of a
single component) they live in memory.

The wallet's P2P transfers are not throttled here: a check in Redis through redis-py costs 80-130
µs of CPU, a sixth to a fifth of a whole payment (`bench/throttle.py` measures it).
Their limit lives in each wallet's actor instead, which is the one place every debit of a
wallet passes, on whichever node (see ``WalletActor``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Final

import redis.asyncio as aioredis
from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from transakt.errors import RateLimited

__all__ = ["RULES", "Throttle"]

#: The rules a Throttle knows, and what each counts (its settings are ``throttle_<rule>``).
RULES: Final[Mapping[str, str]] = {
    "login_account": "failed logins to one e-mail from one IP address",
    "login_ip": "logins from one IP address, to any e-mail",
    "signup_ip": "sign-ups from one IP address",
    "money_user": "deposits and withdrawals of one user",
    "lookup_user": "recipient look-ups of one user",
    "email_code_user": "e-mail verification codes typed in by one user",
    "email_resend_user": "e-mail verification codes one user asks for",
    "bank_link_user": "micro-deposit verifications one user starts",
    "password_user": "wrong current passwords given by one user",
}


class Throttle:
    """Counts hits per rule and key; raises RateLimited once a limit is reached."""

    def __init__(self, rules: Mapping[str, str], redis: aioredis.Redis | None = None) -> None:
        unknown = set(rules) - set(RULES)
        if unknown:
            raise ValueError(f"unknown throttle rules: {sorted(unknown)}")
        self._rules: dict[str, list[RateLimitItem]] = {
            name: parse_many(text) for name, text in rules.items()
        }
        storage: Storage
        if redis is not None:
            # The node's own connection pool: no second set of connections to Redis.
            # (limits types its options as scalars; the pool is passed through to redis-py.)
            options: dict[str, Any] = {"connection_pool": redis.connection_pool}
            storage = RedisStorage("async+redis://", implementation="redispy", **options)
        else:
            storage = MemoryStorage()
        self._storage = storage
        self._limiter = MovingWindowRateLimiter(storage)
        self.refused = 0

    def __repr__(self) -> str:
        return f"<Throttle rules={sorted(self._rules)} refused={self.refused}>"

    async def hit(self, rule: str, *key: str) -> None:
        """Count one attempt, or raise RateLimited if a limit of the rule is reached.

        Each limit counts atomically in the store (a script in Redis), so a burst of
        concurrent attempts cannot slip past it.
        """
        for item in self._rules[rule]:
            if not await self._limiter.hit(item, rule, *key):
                stats = await self._limiter.get_window_stats(item, rule, *key)
                self.refused += 1
                raise RateLimited(
                    f"too many attempts: {RULES[rule]} are limited to {item.amount} per "
                    f"{_window_text(item)}; try again later",
                    retry_after=max(stats.reset_time - time.time(), 1.0),
                    limit=item.amount,
                    window=item.get_expiry(),
                )

    async def clear(self, rule: str, *key: str) -> None:
        """Forget the attempts counted (a correct password ends a run of wrong ones)."""
        for item in self._rules[rule]:
            await self._limiter.clear(item, rule, *key)


def _window_text(item: RateLimitItem) -> str:
    seconds = item.get_expiry()
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            count = seconds // size
            return unit if count == 1 else f"{count} {unit}s"
    return f"{seconds} seconds"
