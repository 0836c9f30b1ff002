"""Bodies of the ledger's newer endpoints: batches and refunds."""

from __future__ import annotations

import re
from typing import Annotated, Final, Literal

from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema

from transakt.http.metadata import OptionalMetadata
from transakt.http.schemas import (
    Amount,
    Currency,
    OptionalEmail,
    OptionalMemo,
    OptionalWalletId,
    TransferBody,
    WalletId,
    _amount,
    _Body,
)
from transakt.money import MAX_AMOUNT
from transakt.services.batches import MAX_BATCH
from transakt.services.holds import DEFAULT_HOLD_SECONDS, MAX_HOLD_SECONDS

__all__ = ["BatchBody", "BatchItemBody", "HoldBody", "PostHoldBody", "RefundBody"]

_REFERENCE: Final = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def _reference(value: str | None) -> str | None:
    if value is not None and not _REFERENCE.fullmatch(value):
        raise ValueError("1 to 64 letters, digits, '.', '_', ':' or '-'")
    return value


Reference = Annotated[
    str | None,
    AfterValidator(_reference),
    WithJsonSchema({"type": ["string", "null"], "pattern": _REFERENCE.pattern}),
]


class BatchItemBody(_Body):
    """One payment: exactly one of ``to_wallet`` and ``to_email``."""

    to_wallet: OptionalWalletId = None
    to_email: OptionalEmail = None
    amount: Amount
    memo: OptionalMemo = None
    reference: Reference = None
    metadata: OptionalMetadata = None


class BatchBody(_Body):
    """Payments from one wallet, all or none (``atomic``) or each on its own."""

    from_wallet: WalletId
    currency: Currency
    mode: Literal["atomic", "independent"]
    transfers: Annotated[list[BatchItemBody], Field(min_length=1, max_length=MAX_BATCH)]
    #: Given to every transfer of the batch that carries none of its own.
    metadata: OptionalMetadata = None


OptionalAmount = Annotated[
    int | None,
    BeforeValidator(lambda value: None if value is None else _amount(value)),
    WithJsonSchema(
        {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_AMOUNT,
         "description": "minor units; null or absent: all that is left"}
    ),
]  # fmt: skip


class RefundBody(_Body):
    """POST /api/v1/transfers/{id}/refund: how much (all that is left by default)."""

    amount: OptionalAmount = None
    memo: OptionalMemo = None


class HoldBody(TransferBody):
    """POST /api/v1/holds: a payment's fields, held until posted or voided (or expired)."""

    expires_in: Annotated[int, Field(ge=1, le=MAX_HOLD_SECONDS)] = DEFAULT_HOLD_SECONDS


class PostHoldBody(_Body):
    """POST /api/v1/holds/{id}/post: how much (the hold's amount by default)."""

    amount: OptionalAmount = None
