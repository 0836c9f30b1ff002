"""Regression tests of the smaller trust findings (HTTP-level ones: test_http_hygiene)."""

from __future__ import annotations

import uuid

import pytest
from httpkit import Api, MakeUser, pay_body

from transakt.config import Settings
from transakt.http.auth import issue_access_token


async def test_a_cursor_beyond_bigint_is_422_not_500(api: Api, make_user: MakeUser) -> None:
    person = await make_user()
    history = f"/api/v1/wallets/{person.wallet_id}/transactions"
    for cursor in ("s9223372036854775808", "s99999999999999999999", "s\u0661\u0662\u0663"):
        answer = await api.get(history, token=person.token, params={"cursor": cursor})
        assert (answer.status, answer.error_code) == (422, "validation_error"), cursor
    largest = await api.get(history, token=person.token, params={"cursor": "s9223372036854775807"})
    assert largest.status == 200


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/wallets", {"currency": "EUR"}),
        ("GET", "/api/v1/me", None),
        ("GET", "/api/v1/bank-account", None),
        ("POST", "/api/v1/auth/logout", None),
        ("POST", "/api/v1/auth/verify-email", {"code": "123456"}),
        ("POST", "/api/v1/bank-account/confirm", {"amounts": [1, 2]}),
        ("POST", "/api/v1/deposits", {"wallet": "wal_x", "amount": 1, "currency": "EUR"}),
    ],
)
async def test_a_valid_token_of_a_user_that_does_not_exist_is_401(
    api: Api, wallet_settings: Settings, method: str, path: str, body: object
) -> None:
    ghost = issue_access_token(wallet_settings, f"usr_{uuid.uuid4().hex}").token
    answer = await api.request(method, path, token=ghost, json=body)
    assert (answer.status, answer.error_code) in ((401, "unauthorized"), (404, "not_found"))
    assert answer.status != 500


@pytest.mark.parametrize(
    "memo",
    [
        "pay\u202egnp.exe",  # right-to-left override: displays as "payexe.png"
        "invoice\u2066 42\u2069",  # isolates
        "zero\u200bwidth",
        "word\u2060joiner",
        "\ufeffbom",
        "soft\u00adhyphen",
        "line\u2028separator",
        "tag\U000e0041",
    ],
)
async def test_memos_that_display_as_something_else_are_refused(
    api: Api, make_user: MakeUser, memo: str
) -> None:
    payer, payee = await make_user(balance=100), await make_user()
    answer = await api.post(
        "/api/v1/transfers", token=payer.token, json=pay_body(payer, payee, 1, memo=memo)
    )
    assert (answer.status, answer.error_code) == (422, "validation_error")
    assert "memo" in answer.body["error"]["fields"]


async def test_memos_keep_emoji_and_are_stored_as_shown(api: Api, make_user: MakeUser) -> None:
    payer, payee = await make_user(balance=100), await make_user()
    memo = "lunch \U0001f469\u200d\U0001f4bb\u00a0caf\u0065\u0301\r\nthanks"
    answer = await api.post(
        "/api/v1/transfers", token=payer.token, json=pay_body(payer, payee, 1, memo=memo)
    )
    assert answer.status == 201, answer.text
    # Composed (é), a plain space for the no-break one, a plain line break; the emoji kept.
    assert answer.body["memo"] == "lunch \U0001f469\u200d\U0001f4bb café\nthanks"


async def test_a_name_with_a_no_break_space_is_one_the_bank_matches(
    api: Api, open_bank_account: object, make_user: MakeUser
) -> None:
    person = await make_user(name="Anna\u00a0Karenina")
    me = await api.get("/api/v1/me", token=person.token)
    assert me.body["user"]["name"] == "Anna Karenina"
    assert me.body["bank_account"]["status"] == "linked"
