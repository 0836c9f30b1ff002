"""The OpenAPI 3.1 document of the wallet service: request schemas come from the validators."""

from __future__ import annotations

from typing import Final

from aiohttp import web
from pydantic import BaseModel

from transakt.config import Settings
from transakt.http._openapi_components import (
    ERRORS,
    PARAMETERS,
    SCHEMAS,
    Json,
    error_response,
    throttled_response,
)
from transakt.http._openapi_ledger import ledger_paths
from transakt.http._openapi_paths import paths
from transakt.http._openapi_policy import POLICY_SCHEMAS, policy_paths, policy_request_schemas
from transakt.http.ledger_schemas import BatchBody, HoldBody, PostHoldBody, RefundBody
from transakt.http.schemas import (
    ApproveBody,
    BankConfirmBody,
    BankTransferBody,
    ChangePasswordBody,
    CreateWalletBody,
    EmailCodeBody,
    LoginBody,
    SignupBody,
    TransferBody,
)

__all__ = ["OPENAPI_KEY", "build_openapi"]

OPENAPI_KEY = web.AppKey("openapi", bytes)

_REF: Final = "#/components/schemas/{model}"

BATCH_RESULT: Final[Json] = {
    "type": "object",
    "required": ["mode", "applied", "refused", "results"],
    "properties": {
        "mode": {"type": "string", "enum": ["atomic", "independent"]},
        "applied": {"type": "integer", "description": "payments made"},
        "refused": {"type": "integer", "description": "payments refused (independent only)"},
        "results": {
            "type": "array",
            "description": "one per payment, in the batch's order",
            "items": {
                "type": "object",
                "required": ["index", "reference", "status"],
                "properties": {
                    "index": {"type": "integer"},
                    "reference": {"type": ["string", "null"]},
                    "status": {"type": "string", "enum": ["applied", "refused"]},
                    "transfer": {"$ref": "#/components/schemas/Transfer"},
                    "error": {
                        "type": "object",
                        "description": "the refusal, as an error body's error object",
                        "required": ["code", "message"],
                    },
                },
            },
        },
    },
}


def _request_schema(model: type[BaseModel], name: str) -> Json:
    schema = model.model_json_schema(ref_template=_REF)
    schema["title"] = name
    return schema


def build_openapi(settings: Settings) -> Json:
    """The OpenAPI 3.1 document for a node configured with ``settings``."""
    signup = _request_schema(SignupBody, "SignupRequest")
    signup["properties"]["password"]["minLength"] = settings.password.min_length
    transfer = _request_schema(TransferBody, "TransferRequest")
    transfer["description"] = "give exactly one of to_wallet and to_email"
    transfer["oneOf"] = [{"required": ["to_wallet"]}, {"required": ["to_email"]}]
    batch = _request_schema(BatchBody, "BatchTransferRequest")
    batch_item = batch.pop("$defs")["BatchItemBody"]
    batch_item["oneOf"] = transfer["oneOf"]
    hold = _request_schema(HoldBody, "HoldRequest")
    hold["oneOf"] = transfer["oneOf"]
    responses = {
        name: (
            throttled_response(description)
            if status == "429"
            else error_response(description, retry=status == "503")
        )
        for name, (status, description) in ERRORS.items()
    }
    document: Json = {
        "openapi": "3.1.0",
        "info": {
            "title": "Transakt wallet API",
            "version": "1",
            "description": (
                "Amounts are integers in minor units with an ISO 4217 currency. Errors are "
                '{"error": {"code", "message", ...}}.'
            ),
        },
        "paths": {**paths(), **ledger_paths(), **policy_paths()},
        "security": [{"bearerAuth": []}],
        "components": {
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
            "schemas": {
                **SCHEMAS,
                "SignupRequest": signup,
                "LoginRequest": _request_schema(LoginBody, "LoginRequest"),
                "CreateWalletRequest": _request_schema(CreateWalletBody, "CreateWalletRequest"),
                "TransferRequest": transfer,
                "BatchTransferRequest": batch,
                "BatchItemBody": batch_item,
                "BatchResult": BATCH_RESULT,
                "RefundRequest": _request_schema(RefundBody, "RefundRequest"),
                "HoldRequest": hold,
                "PostHoldRequest": _request_schema(PostHoldBody, "PostHoldRequest"),
                "Refund": {
                    "allOf": [
                        {"$ref": "#/components/schemas/Transfer"},
                        {
                            "type": "object",
                            "required": ["refund_of"],
                            "properties": {"refund_of": {"type": "string"}},
                        },
                    ]
                },
                "TransferList": {
                    "type": "object",
                    "required": ["items"],
                    "properties": {
                        "items": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/Transfer"},
                        }
                    },
                },
                "BankTransferRequest": _request_schema(BankTransferBody, "BankTransferRequest"),
                "ChangePasswordRequest": _request_schema(
                    ChangePasswordBody, "ChangePasswordRequest"
                ),
                "EmailCodeRequest": _request_schema(EmailCodeBody, "EmailCodeRequest"),
                "BankConfirmRequest": _request_schema(BankConfirmBody, "BankConfirmRequest"),
                "ApproveRequest": _request_schema(ApproveBody, "ApproveRequest"),
                **POLICY_SCHEMAS,
                **policy_request_schemas(),
            },
            "parameters": PARAMETERS,
            "responses": responses,
        },
    }
    if settings.public_url:
        document["servers"] = [{"url": settings.public_url}]
    return document
