"""Errors of the sandbox bank and its client, beyond the shared ones in ``transakt.errors``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from transakt.errors import DomainError, TransaktError, Unauthorized

__all__ = ["AccountExists", "BankRequestRejected", "HolderUnauthorized", "NameMismatch"]


class BankRequestRejected(TransaktError):
    """The bank refused a request for good (a 4xx other than 404): retrying will not help."""

    def __init__(
        self, status: int, code: str, message: str, details: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(f"bank refused the request ({status} {code}): {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = dict(details or {})


class AccountExists(DomainError):
    """An account was opened under a chosen number that another account already has."""

    code = "account_exists"


class NameMismatch(DomainError):
    """The name given is not the account holder's (compared as banks compare names)."""

    code = "name_mismatch"


class HolderUnauthorized(Unauthorized):
    """Online banking without the right account number and passcode (HTTP Basic)."""
