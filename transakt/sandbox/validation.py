"""Request bodies of the bank's API, checked field by field into typed values."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, cast

from transakt.bankapi.constants import (
    CHOSEN_ACCOUNT_PATTERN,
    MAX_ACCOUNT_LENGTH,
    MAX_NAME_LENGTH,
    MAX_PASSCODE_LENGTH,
    MAX_TRANSFER_ID_LENGTH,
    MAX_VERIFICATION_ID_LENGTH,
    MIN_PASSCODE_LENGTH,
)
from transakt.bankapi.models import DIRECTIONS, TransferDirection, TransferRequest
from transakt.errors import ValidationFailed
from transakt.money import parse_amount, parse_currency
from transakt.sandbox.online import is_valid_passcode
from transakt.text import TextRefused, clean_name

__all__ = [
    "NewAccount",
    "NewVerification",
    "parse_confirmation",
    "parse_name",
    "parse_new_account",
    "parse_new_verification",
    "parse_text",
    "parse_transfer",
    "parse_verify",
]

_CHOSEN_ACCOUNT = re.compile(CHOSEN_ACCOUNT_PATTERN)


@dataclass(frozen=True, slots=True)
class NewAccount:
    """A checked POST /api/v1/accounts body; ``account`` and ``passcode`` None when not given."""

    name: str
    currency: str
    balance: int
    account: str | None
    passcode: str | None


@dataclass(frozen=True, slots=True)
class NewVerification:
    """A checked POST /api/v1/account-verifications body."""

    id: str
    account: str
    name: str


def parse_text(value: Any, field: str, max_length: int) -> str:
    """A non-empty printable string of at most ``max_length`` characters."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationFailed(f"{field} must be a non-empty string", field=field)
    if len(value) > max_length:
        raise ValidationFailed(f"{field} must be at most {max_length} characters", field=field)
    # Control characters (NUL above all, which PostgreSQL text refuses) are never meaningful here.
    if not value.isprintable():
        raise ValidationFailed(f"{field} must not contain control characters", field=field)
    return value


def parse_name(value: Any, field: str = "name") -> str:
    """A person's name by the shared text rule (transakt.text): cleaned, or 422 naming the field."""
    try:
        return clean_name(value, max_length=MAX_NAME_LENGTH)
    except TextRefused as refused:
        raise ValidationFailed(f"{field} {refused}", field=field) from None


def _printable_ascii(value: Any, field: str, max_length: int) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= max_length:
        raise ValidationFailed(
            f"{field} must be a string of 1 to {max_length} characters", field=field
        )
    if not all(" " <= char <= "~" for char in value):
        raise ValidationFailed(f"{field} must be printable ASCII", field=field)
    return value


def _require(body: dict[str, Any], *fields: str) -> None:
    missing = [field for field in fields if field not in body]
    if missing:
        raise ValidationFailed(f"missing fields: {', '.join(missing)}", fields=missing)


def parse_new_account(body: dict[str, Any]) -> NewAccount:
    """``{name, currency, balance, account?, passcode?}`` of POST /api/v1/accounts.

    The balance may be zero; ``account`` is a chosen number (1-64 of ``[A-Z0-9]``), ``passcode``
    the holder's online-banking passcode (8-128 printable ASCII); null counts as absent.
    """
    _require(body, "name", "currency", "balance")
    name = parse_name(body["name"])
    currency = parse_currency(body["currency"])
    balance = body["balance"]
    # parse_amount refuses zero, but an empty account is a fine opening balance.
    if not (type(balance) is int and balance == 0):
        balance = parse_amount(balance, "balance")
    account = body.get("account")
    if account is not None and not (
        isinstance(account, str) and _CHOSEN_ACCOUNT.fullmatch(account)
    ):
        raise ValidationFailed(
            f"account must be 1 to {MAX_ACCOUNT_LENGTH} capital letters and digits",
            field="account",
        )
    passcode = body.get("passcode")
    if passcode is not None and not is_valid_passcode(passcode):
        raise ValidationFailed(
            f"passcode must be {MIN_PASSCODE_LENGTH} to {MAX_PASSCODE_LENGTH} characters "
            "of printable ASCII",
            field="passcode",
        )
    return NewAccount(name, currency, balance, account, passcode)


def parse_verify(body: dict[str, Any]) -> str | None:
    """The optional ``name`` of POST /api/v1/verify-user/{account}."""
    name = body.get("name")
    if name is None:
        return None
    return parse_name(name)


def parse_new_verification(body: dict[str, Any]) -> NewVerification:
    """``{id, account, name}`` of POST /api/v1/account-verifications."""
    _require(body, "id", "account", "name")
    return NewVerification(
        id=_printable_ascii(body["id"], "id", MAX_VERIFICATION_ID_LENGTH),
        account=parse_text(body["account"], "account", MAX_ACCOUNT_LENGTH),
        name=parse_name(body["name"]),
    )


def parse_confirmation(body: dict[str, Any]) -> tuple[int, int]:
    """``{amounts: [a, b]}`` of POST /api/v1/account-verifications/{id}/confirm."""
    _require(body, "amounts")
    amounts = body["amounts"]
    if not isinstance(amounts, list) or len(amounts) != 2:
        raise ValidationFailed("amounts must be a list of exactly two amounts", field="amounts")
    first, second = (parse_amount(amount, "amounts") for amount in amounts)
    return first, second


def parse_transfer(body: dict[str, Any]) -> TransferRequest:
    """``{id, account, direction, amount, currency}`` of POST /api/v1/transfers."""
    _require(body, "id", "account", "direction", "amount", "currency")
    direction = body["direction"]
    if direction not in DIRECTIONS:
        raise ValidationFailed("direction must be 'debit' or 'credit'", field="direction")
    return TransferRequest(
        id=parse_text(body["id"], "id", MAX_TRANSFER_ID_LENGTH),
        account=parse_text(body["account"], "account", MAX_ACCOUNT_LENGTH),
        direction=cast(TransferDirection, direction),
        amount=parse_amount(body["amount"]),
        currency=parse_currency(body["currency"]),
    )
