"""How a client sees the bank refuse a request for good (beyond ``transakt.errors``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from transakt.errors import TransaktError

__all__ = ["BankRequestRejected"]


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
