"""Request bodies of the bank's API, checked field by field into typed values."""

from __future__ import annotations

import json
from typing import Any, cast

from aiohttp import web

from transakt.bank.constants import (
    MAX_ACCOUNT_LENGTH,
    MAX_NAME_LENGTH,
    MAX_TRANSFER_ID_LENGTH,
)
from transakt.bank.models import DIRECTIONS, TransferDirection, TransferRequest
from transakt.errors import ValidationFailed
from transakt.money import parse_amount, parse_currency

__all__ = [
    "parse_new_account",
    "parse_text",
    "parse_transfer",
    "parse_verify",
    "read_json_object",
]


async def read_json_object(request: web.Request, *, optional: bool = False) -> dict[str, Any]:
    """The body as a JSON object; raise ValidationFailed for anything else."""
    raw = await request.read()
    if optional and not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):  # bad JSON, bad UTF-8, absurd nesting
        raise ValidationFailed("the body must be valid JSON") from None
    if not isinstance(body, dict):
        raise ValidationFailed("the body must be a JSON object")
    return cast(dict[str, Any], body)


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


def _require(body: dict[str, Any], *fields: str) -> None:
    missing = [field for field in fields if field not in body]
    if missing:
        raise ValidationFailed(f"missing fields: {', '.join(missing)}", fields=missing)


def parse_new_account(body: dict[str, Any]) -> tuple[str, str, int]:
    """``{name, currency, balance}`` of POST /api/v1/accounts; the balance may be zero."""
    _require(body, "name", "currency", "balance")
    name = parse_text(body["name"], "name", MAX_NAME_LENGTH).strip()
    currency = parse_currency(body["currency"])
    balance = body["balance"]
    # parse_amount refuses zero, but an empty account is a fine opening balance.
    if not (type(balance) is int and balance == 0):
        balance = parse_amount(balance, "balance")
    return name, currency, balance


def parse_verify(body: dict[str, Any]) -> str | None:
    """The optional ``name`` of POST /api/v1/verify-user/{account}."""
    name = body.get("name")
    if name is None:
        return None
    return parse_text(name, "name", MAX_NAME_LENGTH).strip()


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
