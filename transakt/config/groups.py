"""Settings groups of the policies: what is throttled and what is held for review (split
from ``settings`` so that each module stays small; ``Settings`` nests them like the others)."""

from __future__ import annotations

from limits import parse_many
from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["ReviewSettings", "ThrottleSettings"]


class _Group(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


def _limits(value: str) -> str:
    try:
        items = parse_many(value)
    except ValueError as error:
        raise ValueError(f"not a list of limits such as '5/minute;20/hour': {error}") from None
    if not items:
        raise ValueError("give at least one limit, such as '5/minute'")
    return value


class ThrottleSettings(_Group):
    """Throttle rules: limits "count/window" joined by ";" (see transakt.services.throttle)."""

    login_account: str = "5/minute;10/10 minutes;20/hour;40/day"
    login_ip: str = "60/10 minutes;600/day"
    signup_ip: str = "10/hour;50/day"
    money_user: str = "30/minute;500/hour"
    lookup_user: str = "60/minute;600/hour"
    email_code_user: str = "10/hour"
    email_resend_user: str = "3/hour;10/day"
    bank_link_user: str = "3/day"
    password_user: str = "5/10 minutes;20/day"

    @field_validator("*")
    @classmethod
    def _valid_limits(cls, value: str) -> str:
        return _limits(value)

    def rules(self) -> dict[str, str]:
        """Every rule by name."""
        return self.model_dump()


class ReviewSettings(_Group):
    """Fraud review: payments that trip a rule are held for an operator. Amounts are minor units
    of the payment's currency; a rule whose threshold is 0 is off (all are, by default)."""

    # More than velocity_count payments, or more than velocity_amount paid, within the window.
    velocity_count: int = Field(0, ge=0, le=1_000_000)
    velocity_amount: int = Field(0, ge=0, le=10**15)
    velocity_seconds: float = Field(3600.0, gt=0, le=31 * 24 * 3600)
    # More than unusual_factor times the median of the payer's last unusual_history payments,
    # once they made at least unusual_min_history.
    unusual_factor: float = Field(0.0, ge=0, le=1_000_000)
    unusual_history: int = Field(20, ge=1, le=1000)
    unusual_min_history: int = Field(5, ge=1, le=1000)
    # At least this much, to a wallet the payer has never paid before.
    new_recipient_amount: int = Field(0, ge=0, le=10**15)
