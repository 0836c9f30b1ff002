"""Account look-ups through an LRU cache (async-lru) in front of the bank's database.

What is cached is an account's identity (number, name, currency), never its balance. Accounts
are never renamed, never change currency and are never closed, so a cached identity cannot go
stale: there is no invalidation to get wrong, no race between a transfer's commit and a
concurrent load, and several bank processes on one schema stay coherent. Balances do change,
so GET account reads the balance fresh (one primary-key read) and only verify-user, the hot
path at signup, is answered from memory alone.
"""

from __future__ import annotations

from async_lru import alru_cache

from transakt.bankapi.models import BankAccount
from transakt.sandbox.store import BankStore

__all__ = ["AccountDirectory"]


class _UnknownAccount(LookupError):
    """Raised inside the loader: async-lru never caches an exception, so a miss is not kept."""


class AccountDirectory:
    """Finds accounts, remembering identities in an LRU cache and reading balances fresh."""

    def __init__(self, store: BankStore, *, maxsize: int = 4096, ttl: float = 300.0) -> None:
        self._store = store
        # One cache per directory (per app), not one per process: tests and embedded runs may
        # hold several banks in one process.
        self._load_identity = alru_cache(maxsize=maxsize, ttl=ttl)(self._fetch_identity)

    def __repr__(self) -> str:
        info = self._load_identity.cache_info()
        return f"<AccountDirectory cached={info.currsize} hits={info.hits} misses={info.misses}>"

    @property
    def hits(self) -> int:
        """Look-ups answered from the cache."""
        return self._load_identity.cache_info().hits

    @property
    def misses(self) -> int:
        """Look-ups that went to the database."""
        return self._load_identity.cache_info().misses

    @property
    def size(self) -> int:
        """Identities held now."""
        return self._load_identity.cache_info().currsize

    async def identity(self, account: str) -> BankAccount | None:
        """The account's number, name and currency (no balance), or None if unknown."""
        try:
            return await self._load_identity(account)
        except _UnknownAccount:
            return None

    async def account(self, account: str) -> BankAccount | None:
        """The account with its current balance, or None if unknown."""
        identity = await self.identity(account)
        if identity is None:
            return None
        balance = await self._store.get_balance(account)
        if balance is None:
            # Only a sandbox reset (rows deleted by hand) removes an account; forget it too.
            self._load_identity.cache_invalidate(account)
            return None
        return BankAccount(identity.account, identity.name, identity.currency, balance)

    def forget_all(self) -> None:
        """Drop every cached identity (after a sandbox reset); counters restart at zero."""
        self._load_identity.cache_clear()

    async def close(self) -> None:
        """Cancel loads still in flight; the directory is unusable afterwards."""
        await self._load_identity.cache_close()

    async def _fetch_identity(self, account: str) -> BankAccount:
        found = await self._store.get_account(account)
        if found is None:
            raise _UnknownAccount(account)
        return BankAccount(found.account, found.name, found.currency)
