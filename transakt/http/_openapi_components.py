"""The OpenAPI document's shared parts: response schemas, parameters, error responses."""

from __future__ import annotations

from typing import Any, Final

from transakt.http.constants import (
    HISTORY_DEFAULT_LIMIT,
    HISTORY_MAX_LIMIT,
    IDEMPOTENCY_HEADER,
    MAX_CURSOR_LENGTH,
    MAX_IDEMPOTENCY_KEY_LENGTH,
)

__all__ = [
    "ERRORS",
    "PARAMETERS",
    "SCHEMAS",
    "Json",
    "error_response",
    "json_body",
    "ref",
    "string",
]

Json = dict[str, Any]


def ref(name: str) -> Json:
    """A reference to a schema of ``components.schemas``."""
    return {"$ref": f"#/components/schemas/{name}"}


def string(**extra: Any) -> Json:
    """A string schema with the given keywords."""
    return {"type": "string", **extra}


TIME: Final = string(format="date-time", description="RFC 3339, UTC")

SCHEMAS: Final[Json] = {
    "User": {
        "type": "object",
        "required": ["id", "email", "name", "email_verified"],
        "properties": {
            "id": string(),
            "email": string(format="email"),
            "name": string(description="the holder's name as the bank confirmed it"),
            "email_verified": {
                "type": "boolean",
                "description": "payments by e-mail reach the user only once this is true",
            },
        },
    },
    "BankAccountLink": {
        "type": "object",
        "description": (
            "the user's bank account (masked) and the proof that they hold it: pending until "
            "the two micro-deposits the bank sent are confirmed, then linked"
        ),
        "required": ["account", "currency", "status"],
        "properties": {
            "account": string(description="the last four characters, masked before"),
            "currency": string(pattern="^[A-Z]{3}$"),
            "status": string(enum=["pending", "linked", "failed"]),
            "attempts_left": {"type": ["integer", "null"]},
            "expires_at": {"type": ["string", "null"], "format": "date-time"},
            "verification_started": {"type": "boolean"},
            "linked_at": {"type": ["string", "null"], "format": "date-time"},
        },
    },
    "Recipient": {
        "type": "object",
        "required": ["email", "name", "currencies"],
        "properties": {
            "email": string(format="email"),
            "name": string(description="the holder's name as their bank confirmed it"),
            "currencies": {"type": "array", "items": string(pattern="^[A-Z]{3}$")},
        },
    },
    "EmailState": {
        "type": "object",
        "required": ["email", "email_verified"],
        "properties": {"email": string(format="email"), "email_verified": {"type": "boolean"}},
    },
    "Approval": {
        "type": "object",
        "required": ["approved"],
        "properties": {"approved": string(format="email")},
    },
    "Wallet": {
        "type": "object",
        "description": "balance is posted money; available = balance - pending_out",
        "required": ["id", "currency", "balance", "available", "pending_in", "pending_out"],
        "properties": {
            "id": string(),
            "currency": string(pattern="^[A-Z]{3}$"),
            "balance": {"type": "integer"},
            "available": {"type": "integer"},
            "pending_in": {"type": "integer", "minimum": 0},
            "pending_out": {"type": "integer", "minimum": 0},
        },
    },
    "Transfer": {
        "type": "object",
        "required": [
            "id",
            "kind",
            "status",
            "from_wallet",
            "to_wallet",
            "amount",
            "currency",
            "memo",
            "created_at",
        ],
        "properties": {
            "id": string(),
            "kind": string(enum=["p2p", "deposit", "withdrawal"]),
            "status": string(enum=["pending", "posted", "voided"]),
            "from_wallet": string(),
            "to_wallet": string(),
            "amount": {"type": "integer", "minimum": 1},
            "currency": string(pattern="^[A-Z]{3}$"),
            "memo": {"type": ["string", "null"]},
            "reason": string(description="why a transfer was voided"),
            "review": ref("Review"),
            "created_at": TIME,
            "posted_at": TIME,
            "metadata": {"type": "object", "description": "the client's own key/value pairs"},
            "expires_at": {**TIME, "description": "a pending hold's expiry"},
            "from_name": string(description="the payer's name as their bank confirmed it"),
            "to_name": string(description="the payee's name as their bank confirmed it"),
        },
    },
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "additionalProperties": True,
                "properties": {
                    "code": string(description="snake_case, e.g. validation_error"),
                    "message": string(description="for humans"),
                    "fields": {
                        "type": "object",
                        "description": "validation_error: what is wrong with each field",
                        "additionalProperties": string(),
                    },
                    "retry_after": {"type": "integer", "description": "seconds"},
                    "request_id": string(description="internal_error: quote it"),
                },
            }
        },
    },
    "UserWithWallets": {
        "type": "object",
        "required": ["user", "wallets"],
        "properties": {
            "user": ref("User"),
            "wallets": {"type": "array", "items": ref("Wallet")},
            "bank_account": ref("BankAccountLink"),
        },
    },
    "WalletList": {
        "type": "object",
        "required": ["wallets"],
        "properties": {"wallets": {"type": "array", "items": ref("Wallet")}},
    },
    "TransferPage": {
        "type": "object",
        "required": ["items", "next_cursor"],
        "properties": {
            "items": {"type": "array", "items": ref("Transfer")},
            "next_cursor": {
                "type": ["string", "null"],
                "description": "pass as ?cursor= for the next (older) page; null on the last",
            },
        },
    },
    "AccessToken": {
        "type": "object",
        "required": ["access_token", "token_type", "expires_in"],
        "properties": {
            "access_token": string(description="a JWT for Authorization: Bearer"),
            "token_type": string(enum=["bearer"]),
            "expires_in": {"type": "integer", "description": "seconds"},
        },
    },
    "Health": {
        "type": "object",
        "required": ["status"],
        "properties": {"status": string(enum=["ok"])},
    },
    "Readiness": {
        "type": "object",
        "required": ["status", "checks"],
        "properties": {
            "status": string(enum=["ready", "not_ready"]),
            "checks": {
                "type": "object",
                "description": "one entry per dependency (database, redis, bank breaker, ...)",
                "additionalProperties": {
                    "type": "object",
                    "properties": {"ok": {"type": "boolean"}},
                    "additionalProperties": True,
                },
            },
        },
    },
}

ERRORS: Final[dict[str, tuple[str, str]]] = {
    # response name: (status, description)
    "ValidationError": (
        "422",
        "validation_error, currency_mismatch, idempotency_key_reused, bank_account_invalid or "
        "verification_failed (with attempts_left)",
    ),
    "Unauthorized": ("401", "unauthorized: missing, expired, forged, logged-out or replaced token"),
    "Forbidden": (
        "403",
        "forbidden (the resource belongs to someone else), or bank_account_not_linked",
    ),
    "NotFound": ("404", "not_found"),
    "Conflict": (
        "409",
        "email_taken, wallet_exists, insufficient_funds, bank_account_taken, "
        "recipient_unverified, limit_exceeded (window, limit, remaining, resets_at) or "
        "review_decided",
    ),
    "TooLarge": ("413", "payload_too_large: the body is over the limit"),
    "TooMany": (
        "429",
        "rate_limited: retry after Retry-After seconds; RateLimit-Limit, RateLimit-Remaining, "
        "RateLimit-Reset and RateLimit-Policy name the limit",
    ),
    "Unavailable": ("503", "bank_unavailable or overloaded: retry after Retry-After seconds"),
}


def error_response(description: str, *, retry: bool = False) -> Json:
    """A response in the error shape (with Retry-After for 503s)."""
    response: Json = {
        "description": description,
        "content": {"application/json": {"schema": ref("Error")}},
    }
    if retry:
        response["headers"] = {"Retry-After": {"schema": {"type": "integer"}}}
    return response


def throttled_response(description: str) -> Json:
    """The 429 answer, with Retry-After and the RateLimit-* headers of the IETF draft."""
    response = error_response(description, retry=True)
    response["headers"].update(
        {
            "RateLimit-Limit": {"schema": {"type": "integer"}},
            "RateLimit-Remaining": {"schema": {"type": "integer"}},
            "RateLimit-Reset": {"schema": {"type": "integer"}},
            "RateLimit-Policy": {"schema": {"type": "string"}},
        }
    )
    return response


def json_body(schema: str) -> Json:
    """JSON content of the named schema."""
    return {"content": {"application/json": {"schema": ref(schema)}}}


PARAMETERS: Final[Json] = {
    "IdempotencyKey": {
        "name": IDEMPOTENCY_HEADER,
        "in": "header",
        "required": False,
        "description": (
            "a replay with the same key and body returns the first answer that reached a "
            "decision, a refusal included (Idempotent-Replayed: true); another body under the "
            "key is idempotency_key_reused"
        ),
        "schema": string(minLength=1, maxLength=MAX_IDEMPOTENCY_KEY_LENGTH),
    },
    "WalletId": {"name": "id", "in": "path", "required": True, "schema": string()},
    "TransferId": {"name": "id", "in": "path", "required": True, "schema": string()},
    "Limit": {
        "name": "limit",
        "in": "query",
        "required": False,
        "schema": {
            "type": "integer",
            "minimum": 1,
            "maximum": HISTORY_MAX_LIMIT,
            "default": HISTORY_DEFAULT_LIMIT,
        },
    },
    "Cursor": {
        "name": "cursor",
        "in": "query",
        "required": False,
        "description": "next_cursor of the previous page",
        "schema": string(maxLength=MAX_CURSOR_LENGTH),
    },
}
