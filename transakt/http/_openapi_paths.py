"""The paths of the OpenAPI document: every endpoint, its answers and its parameters."""

from __future__ import annotations

from transakt.http._openapi_components import ERRORS, Json, json_body, string
from transakt.http._openapi_history import HISTORY_FILTERS, history_paths
from transakt.http._openapi_sandbox import sandbox_paths
from transakt.http.apidocs.paths import apidocs_paths
from transakt.http.constants import API_PREFIX, REPLAYED_HEADER

__all__ = ["paths"]


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


def paths() -> Json:
    """Every path of the wallet service, with its operations."""
    api = API_PREFIX
    wallet_errors = _errors("Forbidden", "NotFound")
    return {
        f"{api}/auth/signup": {
            "post": _operation(
                "signup",
                "Sign up; the bank confirms the account is held in this name (one answer for "
                "an unknown account and another holder: bank_account_invalid), the first wallet "
                "takes its currency, and both proofs start: the bank sends two micro-deposits, "
                "and a code is mailed to the address. Throttled per client address.",
                {
                    **_ok("201", "the new user and first wallet", "UserWithWallets"),
                    **_errors("ValidationError", "Conflict", "TooLarge", "TooMany"),
                    **_errors("Unavailable"),
                },
                public=True,
                body="SignupRequest",
                tag="auth",
            )
        },
        f"{api}/auth/login": {
            "post": _operation(
                "login",
                "Exchange e-mail and password for an access token. Failed logins lock the "
                "e-mail out from that client address for growing times (another address can "
                "still log in); logins per address are throttled too.",
                {
                    **_ok("200", "an access token", "AccessToken"),
                    **_errors("ValidationError", "Unauthorized", "TooMany"),
                },
                public=True,
                body="LoginRequest",
                tag="auth",
            )
        },
        f"{api}/auth/logout": {
            "post": _operation(
                "logout",
                "End this access token now, on every node",
                {"204": {"description": "the token no longer works"}},
                tag="auth",
            )
        },
        f"{api}/auth/password": {
            "post": _operation(
                "change_password",
                "Change the password: every token issued before stops working; the answer is "
                "a fresh token",
                {
                    **_ok("200", "a fresh access token", "AccessToken"),
                    **_errors("ValidationError", "Forbidden", "TooMany"),
                },
                body="ChangePasswordRequest",
                tag="auth",
            )
        },
        f"{api}/auth/verify-email": {
            "post": _operation(
                "verify_email",
                "Verify the e-mail address with the code mailed to it (a few tries per code; "
                "throttled)",
                {
                    **_ok("200", "the address is verified", "EmailState", replayable=True),
                    **_errors("ValidationError", "TooMany"),
                },
                body="EmailCodeRequest",
                parameters=[_param("IdempotencyKey")],
                tag="auth",
            )
        },
        f"{api}/auth/verify-email/resend": {
            "post": _operation(
                "resend_code",
                "Mail a new code (throttled)",
                {
                    **_ok("202", "a new code is on its way", "EmailState", replayable=True),
                    **_errors("TooMany"),
                },
                parameters=[_param("IdempotencyKey")],
                tag="auth",
            )
        },
        f"{api}/bank-account": {
            "get": _operation(
                "bank_account",
                "The user's bank account (masked) and whether it is linked",
                _ok("200", "", "BankAccountLink"),
                tag="bank account",
            )
        },
        f"{api}/bank-account/verification": {
            "post": _operation(
                "start_bank_verification",
                "Have the bank send two new micro-deposits to the account (throttled)",
                {
                    **_ok(
                        "202", "the deposits are on their way", "BankAccountLink", replayable=True
                    ),
                    **_errors("TooMany", "Unavailable"),
                },
                parameters=[_param("IdempotencyKey")],
                tag="bank account",
            )
        },
        f"{api}/bank-account/confirm": {
            "post": _operation(
                "confirm_bank_account",
                "Confirm the two micro-deposits from the bank statement: the account is linked, "
                "and deposits and withdrawals work",
                {
                    **_ok("200", "linked", "BankAccountLink", replayable=True),
                    **_errors("ValidationError", "Conflict", "Unavailable"),
                },
                body="BankConfirmRequest",
                parameters=[_param("IdempotencyKey")],
                tag="bank account",
            )
        },
        f"{api}/bank-account/approvals": {
            "post": _operation(
                "approve_bank_account_user",
                "As the holder of a linked account, let another user (by e-mail) link it too",
                {
                    **_ok("201", "approved", "Approval", replayable=True),
                    **_errors("ValidationError", "Forbidden"),
                },
                body="ApproveRequest",
                parameters=[_param("IdempotencyKey")],
                tag="bank account",
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
                "The wallet's transfers, newest first, narrowed by the filters; a cursor is "
                "good only with the filters of the page that gave it (else a 422), and an "
                "unknown parameter is a 422",
                {**_ok("200", "", "TransferPage"), **wallet_errors, **_errors("ValidationError")},
                parameters=[
                    _param("WalletId"),
                    _param("Limit"),
                    _param("Cursor"),
                    *HISTORY_FILTERS,
                ],
            )
        },
        **history_paths(),
        **sandbox_paths(),
        **apidocs_paths(),
        f"{api}/transfers": {
            "post": _operation(
                "create_transfer",
                "Pay another wallet (to_wallet) or user (to_email)",
                {
                    **_ok("201", "the posted transfer", "Transfer", replayable=True),
                    **_ok("202", "held for review: pending, with review", "HeldTransfer"),
                    **_errors("ValidationError", "Forbidden", "NotFound", "Conflict"),
                    **_errors("TooMany", "Unavailable"),
                },
                body="TransferRequest",
                parameters=[_param("IdempotencyKey")],
            )
        },
        f"{api}/recipients": {
            "get": _operation(
                "recipient",
                "Whom a payment to this e-mail reaches: the holder's name as their bank "
                "confirmed it, and the currencies they hold (throttled: addresses can be "
                "guessed)",
                {
                    **_ok("200", "", "Recipient"),
                    **_errors("ValidationError", "NotFound", "Conflict", "TooMany"),
                },
                parameters=[
                    {
                        "name": "email",
                        "in": "query",
                        "required": True,
                        "schema": string(format="email"),
                    }
                ],
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
                    **_errors("ValidationError", "Forbidden", "NotFound", "TooMany"),
                    **_errors("Unavailable"),
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
                    **_errors("TooMany", "Unavailable"),
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
