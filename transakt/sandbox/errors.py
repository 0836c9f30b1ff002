"""Refusals of the sandbox bank itself (the client sees them as BankRequestRejected)."""

from __future__ import annotations

from transakt.errors import DomainError, Unauthorized

__all__ = ["AccountExists", "HolderUnauthorized", "NameMismatch"]


class AccountExists(DomainError):
    """An account was opened under a chosen number that another account already has."""

    code = "account_exists"


class NameMismatch(DomainError):
    """The name given is not the account holder's (compared as banks compare names)."""

    code = "name_mismatch"


class HolderUnauthorized(Unauthorized):
    """Online banking without the right account number and passcode (HTTP Basic)."""
