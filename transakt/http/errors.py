"""The one place where errors become HTTP answers: domain errors by class, the rest as 500."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final

from aiohttp import web

from transakt.errors import (
    BankAccountInvalid,
    BankAccountNotLinked,
    BankAccountTaken,
    BankUnavailable,
    ClientDisconnected,
    CurrencyMismatch,
    DomainError,
    EmailTaken,
    Forbidden,
    HoldSettled,
    IdempotencyKeyReused,
    InsufficientFunds,
    LimitExceeded,
    NotFound,
    Overloaded,
    RateLimited,
    RecipientUnverified,
    RefundRefused,
    ReviewDecided,
    Unauthorized,
    ValidationFailed,
    VerificationFailed,
    WalletExists,
)
from transakt.http.keys import REQUEST_ID_KEY
from transakt.outages import STORAGE_UNAVAILABLE
from transakt.runtime import ActorDeadError, AskTimeout, MailboxFull, TransportUnavailable
from transakt.web.errors import (
    error_body,
    error_response,
    rate_limit_headers,
    retry_after_seconds,
    seconds_or_zero,
)
from transakt.web.json import json_response

__all__ = [
    "domain_error_parts",
    "error_answer",
    "error_body",
    "error_response",
    "rate_limit_headers",
    "status_for",
]

logger = logging.getLogger("transakt.http")

# Looked up along the exception's MRO, so a subclass (InvalidAmount) inherits its parent's status.
_STATUS_BY_CLASS: Final[Mapping[type[DomainError], int]] = {
    ValidationFailed: 422,
    CurrencyMismatch: 422,
    IdempotencyKeyReused: 422,
    BankAccountInvalid: 422,
    VerificationFailed: 422,
    Unauthorized: 401,
    Forbidden: 403,
    BankAccountNotLinked: 403,
    NotFound: 404,
    EmailTaken: 409,
    WalletExists: 409,
    InsufficientFunds: 409,
    BankAccountTaken: 409,
    RecipientUnverified: 409,
    RefundRefused: 409,
    HoldSettled: 409,
    LimitExceeded: 409,
    ReviewDecided: 409,
    RateLimited: 429,
    # nginx's "client closed request": nobody reads it, but logs and metrics tell it apart.
    ClientDisconnected: 499,
    BankUnavailable: 503,
    Overloaded: 503,
}

# aiohttp's own refusals (routing, body size), spoken in the same error shape.
_HTTP_CODES: Final[Mapping[int, str]] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}

_HTTP_MESSAGES: Final[Mapping[int, str]] = {
    404: "no such resource",
    405: "this method is not allowed here",
    413: "the request body is too large",
}

_BANK_UNAVAILABLE_MESSAGE: Final = "the bank cannot be reached right now; retry later"


def status_for(error: DomainError) -> int:
    """The HTTP status of a domain error; an unmapped new error class is a plain 400."""
    for klass in type(error).__mro__:
        status = _STATUS_BY_CLASS.get(klass)
        if status is not None:
            return status
    return 400


def _domain_error_response(request: web.Request, error: DomainError) -> web.Response:
    status, body, headers = domain_error_parts(request, error)
    return json_response(body, status=status, headers=headers)


def domain_error_parts(
    request: web.Request, error: DomainError
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """The status, JSON body and headers a domain error is answered with."""
    status = status_for(error)
    message = error.message
    details = dict(error.details)
    headers: dict[str, str] = {}
    if isinstance(error, BankUnavailable):
        # The cause (a host, a port, the bank's own words) is for operators, not for clients.
        logger.warning(
            "bank unavailable in %s %s (request %s): %s",
            request.method,
            request.path,
            request.get(REQUEST_ID_KEY, "-"),
            error.message,
        )
        message, details = _BANK_UNAVAILABLE_MESSAGE, {}
    if isinstance(error, ValidationFailed):
        # Every validation error names what is wrong the same way: {"fields": {name: why}}.
        fields = details.get("fields")
        if isinstance(fields, list | tuple):
            details["fields"] = {str(name): error.message for name in fields}
        elif fields is None and "field" in details:
            details["fields"] = {str(details.pop("field")): error.message}
    retry_after = getattr(error, "retry_after", None)
    if isinstance(retry_after, int | float):
        seconds = retry_after_seconds(retry_after)
        headers["Retry-After"] = str(seconds)
        details["retry_after"] = seconds
    if isinstance(error, Unauthorized):
        headers["WWW-Authenticate"] = 'Bearer realm="transakt"'
    if isinstance(error, RateLimited) and error.limit is not None:
        headers.update(rate_limit_headers(error.limit, 0, seconds_or_zero(error.retry_after)))
        if error.window is not None:
            headers["RateLimit-Policy"] = f"{error.limit};w={error.window}"
    return status, error_body(error.code, message, details), headers


def _overloaded(message: str, retry_after: float) -> web.Response:
    seconds = retry_after_seconds(retry_after)
    return error_response(
        503,
        Overloaded.code,
        message,
        details={"retry_after": seconds},
        headers={"Retry-After": str(seconds)},
    )


def _http_error_response(error: web.HTTPException) -> web.Response:
    code = _HTTP_CODES.get(error.status, "http_error")
    headers: dict[str, str] = {}
    if "Allow" in error.headers:
        headers["Allow"] = error.headers["Allow"]
    message = _HTTP_MESSAGES.get(error.status, error.reason)
    return error_response(error.status, code, message, headers=headers)


def error_answer(request: web.Request, error: Exception) -> web.Response:
    """The contract's error answer for what a handler raised (a redirect is raised again)."""
    if isinstance(error, DomainError):
        return _domain_error_response(request, error)
    if isinstance(error, MailboxFull):
        return _overloaded(
            "the service is busy; retry shortly", float(getattr(error, "retry_after", 1.0))
        )
    if isinstance(error, TransportUnavailable):
        # Nothing was sent: the wallet's shard lives on another node and the broker is away.
        return _overloaded(
            "the cluster's message broker is unreachable; retry shortly",
            max(float(error.retry_after), 1.0),
        )
    if isinstance(error, ActorDeadError):
        # The actor stopped (shutdown, or too many restarts) before handling the message.
        return _overloaded("the service is restarting a component; retry shortly", 1.0)
    if isinstance(error, AskTimeout):
        # The work may still complete: only a retry with the same Idempotency-Key is safe.
        return _overloaded(
            "the request timed out and its outcome is unknown; retry with the same Idempotency-Key",
            1.0,
        )
    if isinstance(error, STORAGE_UNAVAILABLE):
        # An outage, not a bug: no traceback, and the client is told to retry.
        logger.warning("database unavailable in %s %s: %r", request.method, request.path, error)
        return _overloaded(
            "the database is unavailable; retry shortly (with the same Idempotency-Key)", 1.0
        )
    if isinstance(error, web.HTTPException):
        if error.status < 400:
            raise error  # redirects and the like are answers, not errors
        return _http_error_response(error)
    request_id = request.get(REQUEST_ID_KEY, "-")
    # The traceback goes to the server log only; the client gets an id to quote.
    logger.error(
        "unhandled error in %s %s (request %s)",
        request.method,
        request.path,
        request_id,
        exc_info=error,
    )
    return error_response(
        500,
        "internal_error",
        "an internal error occurred; quote the request id when reporting it",
        details={"request_id": request_id},
    )
