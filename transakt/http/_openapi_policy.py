"""The OpenAPI description of spend limits and fraud review (kept apart: one concept, one file)."""

from __future__ import annotations

from typing import Final

from transakt.http._openapi_components import ERRORS, TIME, Json, json_body, ref, string
from transakt.http.constants import API_PREFIX

__all__ = ["POLICY_SCHEMAS", "policy_paths", "policy_request_schemas"]

_REASONS: Final = ["velocity_count", "velocity_amount", "unusual_amount", "new_recipient"]
_NULLABLE_AMOUNT: Final[Json] = {"type": ["integer", "null"], "minimum": 0}
_WINDOWS: Final[Json] = {
    "type": "object",
    "required": ["daily", "monthly"],
    "properties": {"daily": _NULLABLE_AMOUNT, "monthly": _NULLABLE_AMOUNT},
}

POLICY_SCHEMAS: Final[Json] = {
    "Review": {
        "type": "object",
        "required": ["status"],
        "description": "on a held P2P payment; reasons are shown to the payer and operators only",
        "properties": {
            "status": string(enum=["under_review", "approved", "rejected"]),
            "reasons": {"type": "array", "items": string(enum=[*_REASONS, "unrecorded"])},
            "decided_at": TIME,
            "held_at": TIME,
            "decided_by": {"type": ["string", "null"], "description": "operators only"},
            "note": {"type": ["string", "null"], "description": "operators only"},
        },
    },
    "HeldTransfer": {
        "allOf": [
            ref("Transfer"),
            {"type": "object", "required": ["review"], "properties": {"review": ref("Review")}},
        ]
    },
    "WalletLimits": {
        "type": "object",
        "description": "windows are the UTC calendar day and the UTC calendar month",
        "required": ["wallet", "currency", "daily", "monthly", "spent", "remaining", "resets_at"],
        "properties": {
            "wallet": string(),
            "currency": string(pattern="^[A-Z]{3}$"),
            "daily": _NULLABLE_AMOUNT,
            "monthly": _NULLABLE_AMOUNT,
            "spent": _WINDOWS,
            "remaining": _WINDOWS,
            "resets_at": {
                "type": "object",
                "properties": {"daily": TIME, "monthly": TIME},
            },
            "updated_at": {"type": ["string", "null"], "format": "date-time"},
        },
    },
    "ReviewItem": {
        "type": "object",
        "required": ["transfer", "review"],
        "properties": {"transfer": ref("Transfer"), "review": ref("Review")},
    },
    "ReviewPage": {
        "type": "object",
        "required": ["items", "next_cursor"],
        "properties": {
            "items": {"type": "array", "items": ref("ReviewItem")},
            "next_cursor": {"type": ["string", "null"]},
        },
    },
}


def policy_request_schemas() -> Json:
    """The request bodies: LimitsRequest and DecisionRequest."""
    from transakt.http.views.limits import LimitsBody
    from transakt.http.views.reviews import DecisionBody

    return {
        "LimitsRequest": {
            **LimitsBody.model_json_schema(ref_template="#/components/schemas/{model}"),
            "title": "LimitsRequest",
        },
        "DecisionRequest": {
            **DecisionBody.model_json_schema(ref_template="#/components/schemas/{model}"),
            "title": "DecisionRequest",
        },
    }


def _errors(*names: str) -> Json:
    return {ERRORS[name][0]: {"$ref": f"#/components/responses/{name}"} for name in names}


def _operation(
    operation_id: str, summary: str, responses: Json, **extra: Json | list[Json]
) -> Json:
    return {
        "operationId": operation_id,
        "summary": summary,
        "tags": ["limits" if "limits" in operation_id else "review"],
        **extra,
        "responses": {**responses, **_errors("Unauthorized")},
    }


def _ok(status: str, description: str, schema: str) -> Json:
    return {status: {"description": description, **json_body(schema)}}


def policy_paths() -> Json:
    """The paths of spend limits and fraud review."""
    api = API_PREFIX
    wallet = {"$ref": "#/components/parameters/WalletId"}
    transfer = {"$ref": "#/components/parameters/TransferId"}
    decision_errors = _errors("ValidationError", "Forbidden", "NotFound", "Conflict")
    return {
        f"{api}/wallets/{{id}}/limits": {
            "get": _operation(
                "get_limits",
                "The wallet's spend limits on outgoing P2P payments and what it spent in the "
                "current UTC day and month (its owner only)",
                {**_ok("200", "limits and spending", "WalletLimits"), **_errors("Forbidden")},
                parameters=[wallet],
            ),
            "put": _operation(
                "set_limits",
                "Replace the wallet's daily and monthly limits (minor units; null: no limit). "
                "A payment past one is refused with 409 limit_exceeded (window, limit, "
                "remaining, resets_at); spending up to a limit is allowed.",
                {
                    **_ok("200", "the limits now", "WalletLimits"),
                    **_errors("ValidationError", "Forbidden", "NotFound"),
                },
                parameters=[wallet],
                requestBody={"required": True, **json_body("LimitsRequest")},
            ),
        },
        f"{api}/reviews": {
            "get": _operation(
                "list_reviews",
                "Held payments waiting for a decision (status=open, the default) or decided "
                "ones (status=decided), oldest first (operators only)",
                {
                    **_ok("200", "a page of the queue", "ReviewPage"),
                    **_errors("ValidationError", "Forbidden"),
                },
                parameters=[
                    {
                        "name": "status",
                        "in": "query",
                        "required": False,
                        "schema": string(enum=["open", "decided"], default="open"),
                    },
                    {"$ref": "#/components/parameters/Limit"},
                    {"$ref": "#/components/parameters/Cursor"},
                ],
            )
        },
        f"{api}/reviews/{{id}}/approve": {
            "post": _operation(
                "approve_review",
                "Approve a held payment: it is posted (operators only; a note is required; "
                "a decision is final: a second one is 409 review_decided)",
                {
                    **_ok("200", "the posted transfer and the decision", "Decision"),
                    **decision_errors,
                },
                parameters=[transfer, {"$ref": "#/components/parameters/IdempotencyKey"}],
                requestBody={"required": True, **json_body("DecisionRequest")},
            )
        },
        f"{api}/reviews/{{id}}/reject": {
            "post": _operation(
                "reject_review",
                "Reject a held payment: it is voided and the payer's hold released (operators "
                "only; a note is required; final)",
                {
                    **_ok("200", "the voided transfer and the decision", "Decision"),
                    **decision_errors,
                },
                parameters=[transfer, {"$ref": "#/components/parameters/IdempotencyKey"}],
                requestBody={"required": True, **json_body("DecisionRequest")},
            )
        },
    }


POLICY_SCHEMAS["Decision"] = {
    "type": "object",
    "required": ["transfer", "review"],
    "properties": {"transfer": ref("Transfer"), "review": ref("Review")},
}
