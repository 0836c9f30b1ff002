"""People: sign-up, login, logout, password, the e-mail code, and the current user."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from transakt.http.auth import current_claims, current_user_id, issue_access_token
from transakt.http.clients import client_address
from transakt.http.idempotency import answer_once
from transakt.http.keys import SETTINGS_KEY
from transakt.http.schemas import (
    ChangePasswordBody,
    EmailCodeBody,
    LoginBody,
    SignupBody,
    validate_body,
)
from transakt.http.views._shared import node_of
from transakt.models import BankLink, User
from transakt.services.idempotency import IdempotencyKey
from transakt.web.json import json_response, read_json_object

__all__ = ["change_password", "login", "logout", "me", "resend_code", "signup", "verify_email"]


class _Profile:
    """The current user, their wallets and where their proofs stand."""

    def __init__(self, user: User, wallets: list[Any], link: BankLink | None) -> None:
        self.user = user
        self.wallets = wallets
        self.link = link

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "user": self.user.to_json(),
            "wallets": [wallet.to_json() for wallet in self.wallets],
        }
        if self.link is not None:
            body["bank_account"] = self.link.to_json()
        return body


async def signup(request: web.Request) -> web.Response:
    """POST /api/v1/auth/signup: the bank vouches for account and name; both proofs start."""
    settings = request.app[SETTINGS_KEY]
    body = validate_body(
        SignupBody,
        await read_json_object(request),
        context={"password_min_length": settings.password.min_length},
    )
    signed_up = await node_of(request).accounts.signup(
        body.email, body.password, body.name, body.bank_account, client_address(request)
    )
    profile = _Profile(signed_up.user, signed_up.wallets, signed_up.bank_link)
    return json_response(profile.to_json(), status=201)


async def login(request: web.Request) -> web.Response:
    """POST /api/v1/auth/login: an access token for a correct e-mail and password."""
    body = validate_body(LoginBody, await read_json_object(request))
    user = await node_of(request).accounts.login(body.email, body.password, client_address(request))
    token = issue_access_token(request.app[SETTINGS_KEY], user.id, version=user.token_version)
    return json_response(token.to_json())


async def me(request: web.Request) -> web.Response:
    """GET /api/v1/me: the user behind the token, their wallets and bank account."""
    node = node_of(request)
    user = await node.accounts.user(current_user_id(request))
    wallets = await node.service.list_wallets(user.id)
    link = await node.links.status(user.id)
    return json_response(_Profile(user, wallets, link).to_json())


async def logout(request: web.Request) -> web.Response:
    """POST /api/v1/auth/logout: this token stops working now, on every node."""
    claims = current_claims(request)
    await node_of(request).accounts.logout(claims.user_id, claims.jti, claims.expires_at)
    return web.Response(status=204)


async def change_password(request: web.Request) -> web.Response:
    """POST /api/v1/auth/password: every earlier token ends; the answer is a fresh one."""
    settings = request.app[SETTINGS_KEY]
    body = validate_body(
        ChangePasswordBody,
        await read_json_object(request),
        context={"password_min_length": settings.password.min_length},
    )
    user = await node_of(request).accounts.change_password(
        current_user_id(request), body.current_password, body.new_password
    )
    token = issue_access_token(settings, user.id, version=user.token_version)
    return json_response(token.to_json())


class _EmailState:
    def __init__(self, user: User, verified: bool) -> None:
        self.user = user
        self.verified = verified

    def to_json(self) -> dict[str, Any]:
        return {"email": self.user.email, "email_verified": self.verified}


async def verify_email(request: web.Request) -> web.Response:
    """POST /api/v1/auth/verify-email: the code from the mail marks the address verified."""
    raw = await read_json_object(request)
    body = validate_body(EmailCodeBody, raw)
    node = node_of(request)
    user = await node.accounts.user(current_user_id(request))

    async def confirm(_key: IdempotencyKey | None) -> _EmailState:
        return _EmailState(user, await node.emails.confirm(user, body.code))

    return await answer_once(request, raw, confirm, status=200, look_up_first=True)


async def resend_code(request: web.Request) -> web.Response:
    """POST /api/v1/auth/verify-email/resend: a new code by mail (throttled)."""
    raw = await read_json_object(request, optional=True)
    node = node_of(request)
    user = await node.accounts.user(current_user_id(request))

    async def resend(_key: IdempotencyKey | None) -> _EmailState:
        issued = await node.emails.resend(user)
        return _EmailState(user, issued is None)

    return await answer_once(request, raw, resend, status=202, look_up_first=True)
