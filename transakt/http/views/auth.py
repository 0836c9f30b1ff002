"""Signup, login and the current user."""

from __future__ import annotations

from aiohttp import web

from transakt.errors import NotFound, Unauthorized
from transakt.http._json import json_response, read_json_object
from transakt.http.auth import current_user_id, issue_access_token
from transakt.http.keys import SETTINGS_KEY
from transakt.http.schemas import LoginBody, SignupBody, validate_body
from transakt.http.views._shared import service_of

__all__ = ["login", "me", "signup"]


async def signup(request: web.Request) -> web.Response:
    """POST /api/v1/auth/signup: the bank verifies the account; the wallet takes its currency."""
    settings = request.app[SETTINGS_KEY]
    body = validate_body(
        SignupBody,
        await read_json_object(request),
        context={"password_min_length": settings.password_min_length},
    )
    user, wallets = await service_of(request).signup(
        body.email, body.password, body.name, body.bank_account
    )
    return json_response(
        {"user": user.to_json(), "wallets": [wallet.to_json() for wallet in wallets]}, status=201
    )


async def login(request: web.Request) -> web.Response:
    """POST /api/v1/auth/login: an access token for a correct e-mail and password."""
    body = validate_body(LoginBody, await read_json_object(request))
    user = await service_of(request).login(body.email, body.password)
    return json_response(issue_access_token(request.app[SETTINGS_KEY], user.id).to_json())


async def me(request: web.Request) -> web.Response:
    """GET /api/v1/me: the user behind the token and their wallets."""
    service = service_of(request)
    user_id = current_user_id(request)
    try:
        user = await service.get_user(user_id)
    except NotFound:
        # A valid signature for a user who no longer exists is not a credential any more.
        raise Unauthorized("the access token is invalid") from None
    wallets = await service.list_wallets(user_id)
    return json_response(
        {"user": user.to_json(), "wallets": [wallet.to_json() for wallet in wallets]}
    )
