"""Request validation: strict pydantic models whose failures become one 422 with ``fields``."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import Annotated, Any, Final, TypeVar, cast

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import PydanticCustomError

from transakt.errors import NotFound, ValidationFailed
from transakt.http.constants import (
    HISTORY_DEFAULT_LIMIT,
    HISTORY_MAX_LIMIT,
    MAX_BANK_ACCOUNT_LENGTH,
    MAX_CURSOR_LENGTH,
    MAX_EMAIL_LENGTH,
    MAX_ID_LENGTH,
    MAX_MEMO_LENGTH,
    MAX_NAME_LENGTH,
    MAX_PASSWORD_LENGTH,
)
from transakt.money import CURRENCY_EXPONENTS, MAX_AMOUNT, parse_amount, parse_currency

__all__ = [
    "BankTransferBody",
    "CreateWalletBody",
    "LoginBody",
    "SignupBody",
    "TransferBody",
    "parse_cursor",
    "parse_limit",
    "parse_path_id",
    "validate_body",
]

ModelT = TypeVar("ModelT", bound=BaseModel)

# Deliberately plain: ASCII local part and a dotted domain. Deliverability is the mail's job.
_EMAIL: Final = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+"
)
_ID: Final = re.compile(r"[A-Za-z0-9_.:-]+")
_CURSOR: Final = re.compile(r"[A-Za-z0-9_.:=+/-]+")
_LIMIT: Final = re.compile(r"[0-9]{1,6}")

# pydantic's own error types, said the way the rest of the API says things.
_MESSAGES: Final = {
    "missing": "this field is required",
    "extra_forbidden": "unknown field",
    "string_type": "must be a string",
    "string_too_short": "must not be empty",
}


def _invalid(message: str) -> PydanticCustomError:
    return PydanticCustomError("invalid", message)


def _clean_text(value: Any, *, max_length: int, allow_newlines: bool = False) -> str:
    """A string without NUL, lone surrogates or control characters (Postgres rejects some)."""
    if not isinstance(value, str):
        raise _invalid("must be a string")
    if len(value) > max_length:
        raise _invalid(f"must be at most {max_length} characters")
    if value.isascii() and value.isprintable():
        # The common case, checked in C: the only unprintable ASCII characters are the
        # controls (Cc), and ASCII has no surrogates (Cs).
        return value
    for char in value:
        if allow_newlines and char in "\n\r\t":
            continue
        if unicodedata.category(char) in ("Cc", "Cs"):
            raise _invalid("must not contain control characters")
    return value


def _email(value: Any) -> str:
    text = _clean_text(value, max_length=MAX_EMAIL_LENGTH)
    if not _EMAIL.fullmatch(text) or len(text.partition("@")[0]) > 64:
        raise _invalid("must be an e-mail address")
    return text.lower()


def _password(value: Any) -> str:
    # Any character is fine in a password (it is only hashed), but it must be a string.
    if not isinstance(value, str):
        raise _invalid("must be a string")
    if not value:
        raise _invalid("must not be empty")
    if len(value) > MAX_PASSWORD_LENGTH:
        raise _invalid(f"must be at most {MAX_PASSWORD_LENGTH} characters")
    return value


def _name(value: Any) -> str:
    text = _clean_text(value, max_length=MAX_NAME_LENGTH).strip()
    if not text:
        raise _invalid("must not be empty")
    return text


def _bank_account(value: Any) -> str:
    text = _clean_text(value, max_length=MAX_BANK_ACCOUNT_LENGTH).strip()
    if not text:
        raise _invalid("must not be empty")
    return text


def _memo(value: Any) -> str:
    return _clean_text(value, max_length=MAX_MEMO_LENGTH, allow_newlines=True)


def _wallet_id(value: Any) -> str:
    if type(value) is str and len(value) <= MAX_ID_LENGTH and _ID.fullmatch(value):
        return value  # an id's characters are printable ASCII: _clean_text would pass it
    text = _clean_text(value, max_length=MAX_ID_LENGTH)
    if not _ID.fullmatch(text):
        raise _invalid("must be a wallet id")
    return text


def _amount(value: Any) -> int:
    try:
        return parse_amount(value)
    except ValidationFailed as error:
        raise _invalid(error.message) from None


def _currency(value: Any) -> str:
    try:
        return parse_currency(value)
    except ValidationFailed as error:
        raise _invalid(error.message) from None


def _optional(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def parse_optional(value: Any) -> Any:
        return None if value is None else parse(value)

    return parse_optional


_STRING: Final[dict[str, Any]] = {"type": "string"}
_NULLABLE_STRING: Final[dict[str, Any]] = {"type": ["string", "null"]}

Email = Annotated[
    str,
    BeforeValidator(_email),
    WithJsonSchema({**_STRING, "format": "email", "maxLength": MAX_EMAIL_LENGTH}),
]
Password = Annotated[
    str,
    BeforeValidator(_password),
    WithJsonSchema({**_STRING, "minLength": 1, "maxLength": MAX_PASSWORD_LENGTH}),
]
Name = Annotated[
    str,
    BeforeValidator(_name),
    WithJsonSchema({**_STRING, "minLength": 1, "maxLength": MAX_NAME_LENGTH}),
]
BankAccount = Annotated[
    str,
    BeforeValidator(_bank_account),
    WithJsonSchema({**_STRING, "minLength": 1, "maxLength": MAX_BANK_ACCOUNT_LENGTH}),
]
WalletId = Annotated[
    str,
    BeforeValidator(_wallet_id),
    WithJsonSchema({**_STRING, "minLength": 1, "maxLength": MAX_ID_LENGTH}),
]
OptionalWalletId = Annotated[
    str | None,
    BeforeValidator(_optional(_wallet_id)),
    WithJsonSchema({**_NULLABLE_STRING, "minLength": 1, "maxLength": MAX_ID_LENGTH}),
]
OptionalEmail = Annotated[
    str | None,
    BeforeValidator(_optional(_email)),
    WithJsonSchema({**_NULLABLE_STRING, "format": "email", "maxLength": MAX_EMAIL_LENGTH}),
]
OptionalMemo = Annotated[
    str | None,
    BeforeValidator(_optional(_memo)),
    WithJsonSchema({**_NULLABLE_STRING, "maxLength": MAX_MEMO_LENGTH}),
]
Amount = Annotated[
    int,
    BeforeValidator(_amount),
    WithJsonSchema(
        {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_AMOUNT,
            "description": "minor units (cents); never a float or a string",
        }
    ),
]
Currency = Annotated[
    str,
    BeforeValidator(_currency),
    WithJsonSchema({**_STRING, "enum": sorted(CURRENCY_EXPONENTS)}),
]


class _Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class SignupBody(_Body):
    """POST /api/v1/auth/signup."""

    email: Email
    password: Password
    name: Name
    bank_account: BankAccount

    @field_validator("password")
    @classmethod
    def _long_enough(cls, value: str, info: ValidationInfo) -> str:
        minimum = int((info.context or {}).get("password_min_length", 8))
        if len(value) < minimum:
            raise _invalid(f"must be at least {minimum} characters")
        return value


class LoginBody(_Body):
    """POST /api/v1/auth/login."""

    email: Email
    password: Password


class CreateWalletBody(_Body):
    """POST /api/v1/wallets."""

    currency: Currency


class TransferBody(_Body):
    """POST /api/v1/transfers: exactly one of ``to_wallet`` and ``to_email``."""

    from_wallet: WalletId
    to_wallet: OptionalWalletId = None
    to_email: OptionalEmail = None
    amount: Amount
    currency: Currency
    memo: OptionalMemo = None


class BankTransferBody(_Body):
    """POST /api/v1/deposits and POST /api/v1/withdrawals."""

    wallet: WalletId
    amount: Amount
    currency: Currency


def _describe(error: Any) -> tuple[str, str]:
    field = ".".join(str(part) for part in error["loc"]) or "body"
    message = _MESSAGES.get(error["type"], error["msg"])
    return field, message


def validate_body(
    model: type[ModelT], body: dict[str, Any], context: dict[str, Any] | None = None
) -> ModelT:
    """Validate a parsed JSON object; every problem is named in one ValidationFailed."""
    try:
        # model_validate(body, context=context) without its keyword handling: the same call.
        parsed = cast(ModelT, model.__pydantic_validator__.validate_python(body, context=context))
    except PydanticValidationError as error:
        fields: dict[str, str] = {}
        for item in error.errors(include_url=False, include_input=False):
            field, message = _describe(item)
            fields.setdefault(field, message)
        first_field, first_message = next(iter(fields.items()))
        raise ValidationFailed(f"{first_field}: {first_message}", fields=fields) from None
    if isinstance(parsed, TransferBody) and (parsed.to_wallet is None) == (parsed.to_email is None):
        message = "give exactly one of to_wallet and to_email"
        raise ValidationFailed(message, fields={"to_wallet": message, "to_email": message})
    return parsed


def parse_limit(raw: str | None) -> int:
    """The ``limit`` query parameter: 1..200, default 50."""
    if raw is None:
        return HISTORY_DEFAULT_LIMIT
    if not _LIMIT.fullmatch(raw) or not 1 <= int(raw) <= HISTORY_MAX_LIMIT:
        message = f"limit must be an integer from 1 to {HISTORY_MAX_LIMIT}"
        raise ValidationFailed(message, fields={"limit": message})
    return int(raw)


def parse_cursor(raw: str | None) -> str | None:
    """The ``cursor`` query parameter as given by a previous page (empty means none)."""
    if not raw:
        return None
    if len(raw) > MAX_CURSOR_LENGTH or not _CURSOR.fullmatch(raw):
        message = "cursor is not one this service handed out"
        raise ValidationFailed(message, fields={"cursor": message})
    return raw


def parse_path_id(raw: str, what: str) -> str:
    """An id from the URL; one that cannot exist is simply not found."""
    if len(raw) > MAX_ID_LENGTH or not _ID.fullmatch(raw):
        raise NotFound(f"no such {what}")
    return raw
