"""Money rules: integer minor units, ISO 4217 currencies, bounds. No floats anywhere."""

from __future__ import annotations

from typing import Any, Final

from transakt.errors import InvalidAmount, ValidationFailed

# 10**15 minor units: far above any real wallet, and below 2**53 so that every amount stays exact
# in JavaScript clients (the dashboard) that parse JSON numbers as doubles.
MAX_AMOUNT: Final = 10**15

# ISO 4217 codes this system accepts, with their minor-unit exponent (how many decimals).
CURRENCY_EXPONENTS: Final[dict[str, int]] = {
    "AED": 2, "ARS": 2, "AUD": 2, "BGN": 2, "BHD": 3, "BRL": 2, "CAD": 2, "CHF": 2, "CLP": 0,
    "CNY": 2, "COP": 2, "CZK": 2, "DKK": 2, "EGP": 2, "EUR": 2, "GBP": 2, "HKD": 2, "HUF": 2,
    "IDR": 2, "ILS": 2, "INR": 2, "ISK": 0, "JOD": 3, "JPY": 0, "KES": 2, "KRW": 0, "KWD": 3,
    "MAD": 2, "MXN": 2, "MYR": 2, "NGN": 2, "NOK": 2, "NZD": 2, "OMR": 3, "PEN": 2, "PHP": 2,
    "PKR": 2, "PLN": 2, "QAR": 2, "RON": 2, "RSD": 2, "SAR": 2, "SEK": 2, "SGD": 2, "THB": 2,
    "TND": 3, "TRY": 2, "TWD": 2, "UAH": 2, "USD": 2, "VND": 0, "ZAR": 2,
}  # fmt: skip


def parse_currency(value: Any, field: str = "currency") -> str:
    """Return an accepted ISO 4217 code or raise ValidationFailed naming the field."""
    if not isinstance(value, str) or value not in CURRENCY_EXPONENTS:
        raise ValidationFailed(
            f"{field} must be an upper-case ISO 4217 code this system supports",
            field=field,
        )
    return value


def parse_amount(value: Any, field: str = "amount") -> int:
    """Return a positive integer amount of minor units, refusing floats, strings and bools."""
    # bool is an int subclass in Python; a JSON `true` is not an amount.
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidAmount(f"{field} must be an integer number of minor units", field=field)
    if value <= 0:
        raise InvalidAmount(f"{field} must be positive", field=field)
    if value > MAX_AMOUNT:
        raise InvalidAmount(f"{field} must be at most {MAX_AMOUNT}", field=field)
    return value
