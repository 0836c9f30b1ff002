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
from transakt.http._openapi_paths import paths
from transakt.http._openapi_policy import POLICY_SCHEMAS, policy_paths, policy_request_schemas
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
        "paths": {**paths(), **policy_paths()},
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
