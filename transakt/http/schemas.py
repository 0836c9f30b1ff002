"""Request validation: strict pydantic models whose failures become one 422 with ``fields``."""

from __future__ import annotations

import re
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
from transakt.http.metadata import OptionalMetadata
from transakt.money import CURRENCY_EXPONENTS, MAX_AMOUNT, parse_amount, parse_currency
from transakt.services.email_verification import CODE_DIGITS
from transakt.text import TextRefused, clean_name, clean_text

__all__ = [
    "ApproveBody",
    "BankConfirmBody",
    "BankTransferBody",
    "ChangePasswordBody",
    "CreateWalletBody",
    "EmailCodeBody",
    "LoginBody",
    "SignupBody",
    "TransferBody",
    "parse_cursor",
    "parse_email_query",
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
_CODE: Final = re.compile(rf"[0-9]{{{CODE_DIGITS}}}")
# The bank's micro-deposits are under 100 minor units each.
MAX_MICRO_DEPOSIT: Final = 99

# pydantic's own error types, said the way the rest of the API says things.
_MESSAGES: Final = {
    "missing": "this field is required",
    "extra_forbidden": "unknown field",
    "string_type": "must be a string",
    "string_too_short": "must not be empty",
}


def _invalid(message: str) -> PydanticCustomError:
    return PydanticCustomError("invalid", message)


def _clean_text(value: Any, *, max_length: int, multiline: bool = False) -> str:
    """Text by the one rule the wallet and the bank share (see :mod:`transakt.text`)."""
    try:
        return clean_text(value, max_length=max_length, multiline=multiline)
    except TextRefused as error:
        raise _invalid(str(error)) from None


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
    try:
        return clean_name(value, max_length=MAX_NAME_LENGTH)
    except TextRefused as error:
        raise _invalid(str(error)) from None


def _bank_account(value: Any) -> str:
    text = _clean_text(value, max_length=MAX_BANK_ACCOUNT_LENGTH).strip()
    if not text:
        raise _invalid("must not be empty")
    return text


def _memo(value: Any) -> str:
    return _clean_text(value, max_length=MAX_MEMO_LENGTH, multiline=True)


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


def _email_code(value: Any) -> str:
    if not isinstance(value, str) or not _CODE.fullmatch(value.strip()):
        raise _invalid(f"must be the {CODE_DIGITS}-digit code from the e-mail")
    return value.strip()


def _micro_deposits(value: Any) -> tuple[int, int]:
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(type(item) is int and 1 <= item <= MAX_MICRO_DEPOSIT for item in value)
    ):
        raise _invalid(
            f"must be the two amounts the bank sent, in minor units (1 to {MAX_MICRO_DEPOSIT})"
        )
    return value[0], value[1]


EmailCode = Annotated[
    str,
    BeforeValidator(_email_code),
    WithJsonSchema({**_STRING, "pattern": f"^[0-9]{{{CODE_DIGITS}}}$"}),
]
MicroDeposits = Annotated[
    tuple[int, int],
    BeforeValidator(_micro_deposits),
    WithJsonSchema(
        {
            "type": "array",
            "items": {"type": "integer", "minimum": 1, "maximum": MAX_MICRO_DEPOSIT},
            "minItems": 2,
            "maxItems": 2,
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


def _long_enough_password(value: str, info: ValidationInfo) -> str:
    """A new password's length, checked against the node's rule (passed as context)."""
    minimum = int((info.context or {}).get("password_min_length", 8))
    if len(value) < minimum:
        raise _invalid(f"must be at least {minimum} characters")
    return value


class SignupBody(_Body):
    """POST /api/v1/auth/signup."""

    email: Email
    password: Password
    name: Name
    bank_account: BankAccount

    _long_enough = field_validator("password")(_long_enough_password)


class LoginBody(_Body):
    """POST /api/v1/auth/login."""

    email: Email
    password: Password


class ChangePasswordBody(_Body):
    """POST /api/v1/auth/password: the current password, and the new one."""

    current_password: Password
    new_password: Password

    _long_enough = field_validator("new_password")(_long_enough_password)


class EmailCodeBody(_Body):
    """POST /api/v1/auth/verify-email: the code from the mail."""

    code: EmailCode


class BankConfirmBody(_Body):
    """POST /api/v1/bank-account/confirm: the two micro-deposits, in minor units, any order."""

    amounts: MicroDeposits


class ApproveBody(_Body):
    """POST /api/v1/bank-account/approvals: the e-mail of the user the holder lets in."""

    email: Email


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
    metadata: OptionalMetadata = None


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


def parse_email_query(raw: str | None) -> str:
    """An ``email`` query parameter, checked like an e-mail in a body (lower-cased)."""
    if raw is None:
        raise ValidationFailed("email is required", fields={"email": "this field is required"})
    try:
        return _email(raw)
    except PydanticCustomError as error:
        message = str(error)
        raise ValidationFailed(f"email: {message}", fields={"email": message}) from None
