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
    json_body,
    string,
)
from transakt.http.constants import API_PREFIX, REPLAYED_HEADER
from transakt.http.schemas import (
    BankTransferBody,
    CreateWalletBody,
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


def _ok(status: str, description: str, schema: str, *, replayable: bool = False) -> Json:
    response: Json = {"description": description, **json_body(schema)}
    if replayable:
        response["headers"] = {
            REPLAYED_HEADER: {
                "description": "true when this is the stored answer to an earlier request",
                "schema": string(enum=["true"]),
            }
        }
    return {status: response}


def _errors(*names: str) -> Json:
    return {ERRORS[name][0]: {"$ref": f"#/components/responses/{name}"} for name in names}


def _operation(
    operation_id: str,
    summary: str,
    responses: Json,
    *,
    public: bool = False,
    body: str | None = None,
    parameters: list[Json] | None = None,
    tag: str = "wallet",
) -> Json:
    operation: Json = {"operationId": operation_id, "summary": summary, "tags": [tag]}
    if public:
        operation["security"] = []
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        operation["requestBody"] = {"required": True, **json_body(body)}
    if not public:
        responses = {**responses, **_errors("Unauthorized")}
    operation["responses"] = responses
    return operation


def _param(name: str) -> Json:
    return {"$ref": f"#/components/parameters/{name}"}


def _paths() -> Json:
    api = API_PREFIX
    wallet_errors = _errors("Forbidden", "NotFound")
    return {
        f"{api}/auth/signup": {
            "post": _operation(
                "signup",
                "Sign up; the bank verifies the account and the first wallet takes its currency",
                {
                    **_ok("201", "the new user and first wallet", "UserWithWallets"),
                    **_errors("ValidationError", "Conflict", "TooLarge", "Unavailable"),
                },
                public=True,
                body="SignupRequest",
                tag="auth",
            )
        },
        f"{api}/auth/login": {
            "post": _operation(
                "login",
                "Exchange e-mail and password for an access token",
                {
                    **_ok("200", "an access token", "AccessToken"),
                    **_errors("ValidationError", "Unauthorized"),
                },
                public=True,
                body="LoginRequest",
                tag="auth",
            )
        },
        f"{api}/me": {
            "get": _operation(
                "me", "The current user and their wallets", _ok("200", "", "UserWithWallets")
            )
        },
        f"{api}/wallets": {
            "get": _operation("list_wallets", "The user's wallets", _ok("200", "", "WalletList")),
            "post": _operation(
                "create_wallet",
                "Open a wallet (one per currency)",
                {
                    **_ok("201", "the new wallet", "Wallet", replayable=True),
                    **_errors("ValidationError", "Conflict", "Unavailable"),
                },
                body="CreateWalletRequest",
                parameters=[_param("IdempotencyKey")],
            ),
        },
        f"{api}/wallets/{{id}}": {
            "get": _operation(
                "get_wallet",
                "One wallet",
                {**_ok("200", "", "Wallet"), **wallet_errors},
                parameters=[_param("WalletId")],
            )
        },
        f"{api}/wallets/{{id}}/transactions": {
            "get": _operation(
                "wallet_history",
                "The wallet's transfers, newest first",
                {**_ok("200", "", "TransferPage"), **wallet_errors, **_errors("ValidationError")},
                parameters=[_param("WalletId"), _param("Limit"), _param("Cursor")],
            )
        },
        f"{api}/transfers": {
            "post": _operation(
                "create_transfer",
                "Pay another wallet (to_wallet) or user (to_email)",
                {
                    **_ok("201", "the posted transfer", "Transfer", replayable=True),
                    **_errors("ValidationError", "Forbidden", "NotFound", "Conflict"),
                    **_errors("Unavailable"),
                },
                body="TransferRequest",
                parameters=[_param("IdempotencyKey")],
            )
        },
        f"{api}/transfers/{{id}}": {
            "get": _operation(
                "get_transfer",
                "One transfer (visible to both parties)",
                {**_ok("200", "", "Transfer"), **_errors("NotFound")},
                parameters=[_param("TransferId")],
            )
        },
        f"{api}/deposits": {
            "post": _operation(
                "create_deposit",
                "Move money from the user's bank account into a wallet",
                {
                    **_ok(
                        "202",
                        "accepted: pending until the bank debits the account, then posted "
                        "(or voided with a reason)",
                        "Transfer",
                        replayable=True,
                    ),
                    **_errors("ValidationError", "Forbidden", "NotFound", "Unavailable"),
                },
                body="BankTransferRequest",
                parameters=[_param("IdempotencyKey")],
            )
        },
        f"{api}/withdrawals": {
            "post": _operation(
                "create_withdrawal",
                "Move money from a wallet to the user's bank account; the amount is held at once",
                {
                    **_ok(
                        "202",
                        "accepted: held (available drops) until the bank credits the account, "
                        "then posted (or voided, releasing the hold)",
                        "Transfer",
                        replayable=True,
                    ),
                    **_errors("ValidationError", "Forbidden", "NotFound", "Conflict"),
                    **_errors("Unavailable"),
                },
                body="BankTransferRequest",
                parameters=[_param("IdempotencyKey")],
            )
        },
        f"{api}/live": {
            "get": _operation(
                "live",
                "Websocket feed of the user's balances and transfers (upgrade required)",
                {
                    "101": {
                        "description": (
                            "Switching to websocket. The server sends JSON text messages: first "
                            '{"type": "balance", "wallet": Wallet} for each wallet, then '
                            '{"type": "balance", "wallet": Wallet} and {"type": "transfer", '
                            '"transfer": Transfer} as they happen, for the user\'s own wallets '
                            "only. Close codes: 4001 token expired, 4008 too slow (reconnect "
                            "for a fresh snapshot), 1001 server shutting down."
                        )
                    },
                    **_errors("ValidationError", "TooMany"),
                },
                parameters=[
                    {
                        "name": "token",
                        "in": "query",
                        "required": False,
                        "description": "the access token, for clients that cannot set headers",
                        "schema": string(),
                    }
                ],
            )
        },
        f"{api}/openapi.json": {
            "get": _operation(
                "openapi",
                "This document",
                {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {}}}},
                public=True,
                tag="operations",
            )
        },
        "/healthz": {
            "get": _operation(
                "healthz", "Liveness", _ok("200", "", "Health"), public=True, tag="operations"
            )
        },
        "/readyz": {
            "get": _operation(
                "readyz",
                "Readiness of every dependency",
                {
                    **_ok("200", "ready", "Readiness"),
                    "503": {"description": "not ready", **json_body("Readiness")},
                },
                public=True,
                tag="operations",
            )
        },
        "/metrics": {
            "get": _operation(
                "metrics",
                "Prometheus metrics",
                {"200": {"description": "", "content": {"text/plain": {}}}},
                public=True,
                tag="operations",
            )
        },
        "/": {
            "get": _operation(
                "index",
                "The dashboard page (it uses only this API)",
                {"200": {"description": "", "content": {"text/html": {}}}},
                public=True,
                tag="dashboard",
            )
        },
        "/static/{name}": {
            "get": _operation(
                "static_asset",
                "A file of the dashboard (script module, style sheet, icon)",
                {
                    "200": {"description": "the file", "content": {"*/*": {}}},
                    "304": {"description": "the cached copy is current (If-None-Match)"},
                    **_errors("NotFound"),
                },
                public=True,
                parameters=[{"name": "name", "in": "path", "required": True, "schema": string()}],
                tag="dashboard",
            )
        },
    }


def build_openapi(settings: Settings) -> Json:
    """The OpenAPI 3.1 document for a node configured with ``settings``."""
    signup = _request_schema(SignupBody, "SignupRequest")
    signup["properties"]["password"]["minLength"] = settings.password_min_length
    transfer = _request_schema(TransferBody, "TransferRequest")
    transfer["description"] = "give exactly one of to_wallet and to_email"
    transfer["oneOf"] = [{"required": ["to_wallet"]}, {"required": ["to_email"]}]
    responses = {
        name: error_response(description, retry=status in {"429", "503"})
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
        "paths": _paths(),
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
            },
            "parameters": PARAMETERS,
            "responses": responses,
        },
    }
    if settings.public_url:
        document["servers"] = [{"url": settings.public_url}]
    return document
