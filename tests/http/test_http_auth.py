"""Signup, login, /me and the access token rules."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import jwt
import pytest
from httpkit import JWT_SECRET, PASSWORD, Api, MakeUser, unique_email

from transakt.config import Settings
from transakt.http.auth import issue_access_token

OpenAccount = Callable[..., Awaitable[str]]


def _signup_body(account: str, **changes: Any) -> dict[str, Any]:
    # The holder's name: what open_bank_account opens accounts under by default.
    body = {
        "email": unique_email(),
        "password": PASSWORD,
        "name": "Test Person",
        "bank_account": account,
    }
    body.update(changes)
    return body


async def test_signup_creates_user_and_first_wallet_in_the_bank_currency(
    api: Api, open_bank_account: OpenAccount
) -> None:
    account = await open_bank_account("Ada Lovelace", "GBP")
    email = unique_email("Ada")
    answer = await api.post(
        "/api/v1/auth/signup",
        json={
            "email": email,
            "password": PASSWORD,
            "name": "Ada Lovelace",
            "bank_account": account,
        },
    )
    assert answer.status == 201
    assert answer.body["user"]["email"] == email.lower()
    assert answer.body["user"]["name"] == "Ada Lovelace"
    assert set(answer.body["user"]) == {"id", "email", "name", "email_verified"}
    assert answer.body["user"]["email_verified"] is False
    assert answer.body["bank_account"]["status"] == "pending"
    assert answer.body["bank_account"]["account"] == "•••• " + account[-4:]
    [wallet] = answer.body["wallets"]
    assert wallet["currency"] == "GBP"
    assert wallet["balance"] == wallet["available"] == 0
    assert wallet["pending_in"] == wallet["pending_out"] == 0


async def test_signup_twice_with_the_same_email_in_other_case_is_409(
    api: Api, open_bank_account: OpenAccount
) -> None:
    account = await open_bank_account()
    email = unique_email()
    first = await api.post("/api/v1/auth/signup", json=_signup_body(account, email=email))
    assert first.status == 201
    again = await api.post("/api/v1/auth/signup", json=_signup_body(account, email=email.upper()))
    assert again.status == 409
    assert again.error_code == "email_taken"


async def test_signup_with_an_unknown_bank_account_is_422(api: Api) -> None:
    answer = await api.post("/api/v1/auth/signup", json=_signup_body("DE00000000000000000000"))
    assert answer.status == 422
    assert answer.error_code == "bank_account_invalid"


@pytest.mark.usefixtures("bank_down")
async def test_signup_while_the_bank_is_down_is_503_with_retry_after(api: Api) -> None:
    answer = await api.post("/api/v1/auth/signup", json=_signup_body("DE12345678901234567890"))
    assert answer.status == 503
    assert answer.error_code == "bank_unavailable"
    assert int(answer.headers["Retry-After"]) >= 1
    # Where the bank lives and what it said stay in the server log.
    assert "127.0.0.1" not in answer.text and "refuse_all" not in answer.text


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": "a@b"}, "email"),
        ({"email": 42}, "email"),
        ({"email": "x" * 250 + "@example.test"}, "email"),
        ({"password": "short"}, "password"),
        ({"password": "p" * 1025}, "password"),
        ({"password": None}, "password"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "n" * 201}, "name"),
        ({"name": "nul\x00byte"}, "name"),
        ({"bank_account": ""}, "bank_account"),
        ({"bank_account": "1" * 65}, "bank_account"),
        ({"bank_account": 12345}, "bank_account"),
        ({"role": "admin"}, "role"),
    ],
)
async def test_signup_validation(api: Api, changes: dict[str, Any], field: str) -> None:
    answer = await api.post("/api/v1/auth/signup", json=_signup_body("DE1", **changes))
    assert answer.status == 422
    assert answer.error_code == "validation_error"
    assert field in answer.body["error"]["fields"]


@pytest.mark.parametrize("missing", ["email", "password", "name", "bank_account"])
async def test_signup_missing_field_is_named(api: Api, missing: str) -> None:
    body = _signup_body("DE1")
    del body[missing]
    answer = await api.post("/api/v1/auth/signup", json=body)
    assert answer.status == 422
    assert answer.body["error"]["fields"][missing] == "this field is required"


@pytest.mark.parametrize(
    "raw", [b"", b"{", b"not json", b"[]", b'"text"', b"42", b"null", b'{"a": NaN}', b"\xff\xfe"]
)
async def test_signup_body_that_is_not_a_json_object_is_422(api: Api, raw: bytes) -> None:
    answer = await api.post(
        "/api/v1/auth/signup", data=raw, headers={"Content-Type": "application/json"}
    )
    assert answer.status == 422
    assert answer.error_code == "validation_error"
    assert "body" in answer.body["error"]["fields"]


async def test_login_answers_a_bearer_token(
    api: Api, make_user: MakeUser, wallet_settings: Settings
) -> None:
    person = await make_user()
    answer = await api.post(
        "/api/v1/auth/login", json={"email": person.email.upper(), "password": PASSWORD}
    )
    assert answer.status == 200
    assert answer.body["token_type"] == "bearer"
    assert answer.body["expires_in"] == wallet_settings.jwt.ttl_seconds
    claims = jwt.decode(
        answer.body["access_token"], JWT_SECRET, algorithms=["HS256"], audience="transakt-api"
    )
    assert claims["sub"] == person.user_id
    assert claims["iss"] == "transakt"
    assert claims["exp"] - claims["iat"] == wallet_settings.jwt.ttl_seconds
    assert claims["jti"]


async def test_login_with_a_wrong_password_or_unknown_email_is_the_same_401(
    api: Api, make_user: MakeUser
) -> None:
    person = await make_user()
    wrong = await api.post(
        "/api/v1/auth/login", json={"email": person.email, "password": "wrong password!"}
    )
    unknown = await api.post(
        "/api/v1/auth/login", json={"email": unique_email(), "password": PASSWORD}
    )
    assert wrong.status == unknown.status == 401
    assert wrong.error_code == unknown.error_code == "unauthorized"
    assert wrong.body["error"]["message"] == unknown.body["error"]["message"]


async def test_login_validation(api: Api) -> None:
    answer = await api.post("/api/v1/auth/login", json={"email": unique_email()})
    assert answer.status == 422
    assert answer.body["error"]["fields"] == {"password": "this field is required"}


async def test_me_shows_the_user_and_wallets(api: Api, make_user: MakeUser) -> None:
    person = await make_user(currency="USD")
    answer = await api.get("/api/v1/me", token=person.token)
    assert answer.status == 200
    assert answer.body["user"] == {
        "id": person.user_id,
        "email": person.email,
        "name": person.name,
        "email_verified": True,
    }
    assert [wallet["id"] for wallet in answer.body["wallets"]] == [person.wallet_id]
    assert answer.body["bank_account"]["status"] == "linked"
    assert answer.body["bank_account"]["currency"] == "USD"
    assert answer.headers["Cache-Control"] == "no-store"


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(user_id: str, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": user_id,
        "iat": now,
        "exp": now + 600,
        "iss": "transakt",
        "aud": "transakt-api",
        "jti": "x",
    }
    claims.update(changes)
    return {key: value for key, value in claims.items() if value is not None}


def _bad_tokens(user_id: str, settings: Settings) -> dict[str, str]:
    forged_secret = "an-attacker-secret-0123456789-abcdefghijklmnopqrstuvwxyz-0123456789"
    return {
        "expired": issue_access_token(settings, user_id, now=int(time.time()) - 7200).token,
        "forged": jwt.encode(_claims(user_id), forged_secret, algorithm="HS256"),
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims(user_id))}.",
        "wrong audience": jwt.encode(_claims(user_id, aud="other"), JWT_SECRET, algorithm="HS256"),
        "wrong issuer": jwt.encode(_claims(user_id, iss="other"), JWT_SECRET, algorithm="HS256"),
        "no exp": jwt.encode(_claims(user_id, exp=None), JWT_SECRET, algorithm="HS256"),
        "no sub": jwt.encode(_claims(user_id, sub=None), JWT_SECRET, algorithm="HS256"),
        "other algorithm": jwt.encode(_claims(user_id), JWT_SECRET, algorithm="HS512"),
        "garbage": "not.a.jwt",
    }


async def test_bad_tokens_are_401(api: Api, make_user: MakeUser, wallet_settings: Settings) -> None:
    person = await make_user()
    for label, token in _bad_tokens(person.user_id, wallet_settings).items():
        answer = await api.get("/api/v1/me", token=token)
        assert answer.status == 401, label
        assert answer.error_code == "unauthorized", label
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer "}]
)
async def test_missing_token_is_401_on_every_private_route(
    api: Api, headers: dict[str, str]
) -> None:
    for method, path in [
        ("GET", "/api/v1/me"),
        ("GET", "/api/v1/wallets"),
        ("POST", "/api/v1/wallets"),
        ("GET", "/api/v1/wallets/wal_x"),
        ("GET", "/api/v1/wallets/wal_x/transactions"),
        ("POST", "/api/v1/transfers"),
        ("GET", "/api/v1/transfers/trf_x"),
    ]:
        answer = await api.request(method, path, headers=headers, json={})
        assert answer.status == 401, (method, path)
        assert answer.error_code == "unauthorized"


async def test_token_in_query_is_refused_outside_the_live_feed(
    api: Api, make_user: MakeUser
) -> None:
    person = await make_user()
    answer = await api.get("/api/v1/me", params={"token": person.token})
    assert answer.status == 401


async def test_token_of_a_user_that_does_not_exist_is_401_on_me(
    api: Api, wallet_settings: Settings
) -> None:
    token = issue_access_token(wallet_settings, "usr_does_not_exist").token
    answer = await api.get("/api/v1/me", token=token)
    assert answer.status == 401
