"""Verified e-mail: the code mailed to the address, and who may receive payments by e-mail."""

from __future__ import annotations

import asyncpg
from httpkit import Api, MakeUser, pay_body, wallet_balance
from trustkit import mailed_code

from trust.conftest import OpenNode

CODE = "/api/v1/auth/verify-email"


async def test_an_unverified_address_cannot_receive_by_email_and_its_holder_sees_why(
    api: Api, make_user: MakeUser, wallet_pool: asyncpg.Pool
) -> None:
    payer = await make_user(balance=1_000)
    payee = await make_user(email_verified=False)
    by_email = pay_body(payer, payee, 100, to_wallet=..., to_email=payee.email)
    refused = await api.post("/api/v1/transfers", token=payer.token, json=by_email)
    assert (refused.status, refused.error_code) == (409, "recipient_unverified")
    assert "verified" in refused.body["error"]["message"]
    assert (await wallet_balance(api, payer), await wallet_balance(api, payee)) == (1_000, 0)
    me = await api.get("/api/v1/me", token=payee.token)
    assert me.body["user"]["email_verified"] is False

    # A wallet id the payee handed over still works: it proves nothing about an address.
    direct = await api.post(
        "/api/v1/transfers", token=payer.token, json=pay_body(payer, payee, 100)
    )
    assert direct.status == 201

    verified = await api.post(
        CODE, token=payee.token, json={"code": await mailed_code(wallet_pool, payee.user_id)}
    )
    assert (verified.status, verified.body["email_verified"]) == (200, True)
    now = await api.post("/api/v1/transfers", token=payer.token, json=by_email)
    assert now.status == 201, now.text
    assert (await wallet_balance(api, payer), await wallet_balance(api, payee)) == (800, 200)


async def test_a_code_allows_a_few_tries_then_only_a_new_code_works(
    api: Api, make_user: MakeUser, wallet_pool: asyncpg.Pool
) -> None:
    person = await make_user(email_verified=False)
    code = await mailed_code(wallet_pool, person.user_id)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for left in (4, 3, 2, 1):
        answer = await api.post(CODE, token=person.token, json={"code": wrong})
        assert (answer.status, answer.error_code) == (422, "verification_failed")
        assert answer.body["error"]["attempts_left"] == left
    spent = await api.post(CODE, token=person.token, json={"code": wrong})
    assert spent.body["error"]["attempts_left"] == 0
    late = await api.post(CODE, token=person.token, json={"code": code})
    assert late.error_code == "verification_failed"  # the code itself is spent

    resent = await api.post("/api/v1/auth/verify-email/resend", token=person.token)
    assert resent.status == 202, resent.text
    fresh = await mailed_code(wallet_pool, person.user_id)
    verified = await api.post(CODE, token=person.token, json={"code": fresh})
    assert verified.status == 200, verified.text
    me = await api.get("/api/v1/me", token=person.token)
    assert me.body["user"]["email_verified"] is True


async def test_an_expired_code_no_longer_works(
    api: Api, make_user: MakeUser, wallet_pool: asyncpg.Pool
) -> None:
    person = await make_user(email_verified=False)
    code = await mailed_code(wallet_pool, person.user_id)
    await wallet_pool.execute(
        "UPDATE email_verifications SET expires_at = now() - interval '1 second' "
        "WHERE user_id = $1",
        person.user_id,
    )
    answer = await api.post(CODE, token=person.token, json={"code": code})
    assert (answer.status, answer.error_code) == (422, "verification_failed")


async def test_codes_and_new_codes_are_throttled_per_user(
    open_node: OpenNode, make_user: MakeUser
) -> None:
    node, _ = await open_node(
        throttle_email_code_user="2/minute", throttle_email_resend_user="1/minute"
    )
    person = await make_user(email_verified=False)
    for _ in range(2):
        answer = await node.post(CODE, token=person.token, json={"code": "000000"})
        assert answer.status == 422
    throttled = await node.post(CODE, token=person.token, json={"code": "000000"})
    assert (throttled.status, throttled.error_code) == (429, "rate_limited")
    assert int(throttled.headers["Retry-After"]) >= 1
    assert throttled.headers["RateLimit-Limit"] == "2"
    assert throttled.headers["RateLimit-Remaining"] == "0"
    first = await node.post("/api/v1/auth/verify-email/resend", token=person.token)
    assert first.status == 202
    second = await node.post("/api/v1/auth/verify-email/resend", token=person.token)
    assert (second.status, second.error_code) == (429, "rate_limited")


async def test_malformed_codes_are_422_and_cost_no_try(
    api: Api, make_user: MakeUser, wallet_pool: asyncpg.Pool
) -> None:
    person = await make_user(email_verified=False)
    for bad in ("12345", "1234567", "abcdef", 123456, None):
        answer = await api.post(CODE, token=person.token, json={"code": bad})
        assert (answer.status, answer.error_code) == (422, "validation_error"), bad
    left = await wallet_pool.fetchval(
        "SELECT attempts_left FROM email_verifications WHERE user_id = $1", person.user_id
    )
    assert left == 5


async def test_a_recipient_look_up_names_the_verified_holder_and_is_throttled(
    api: Api, open_node: OpenNode, make_user: MakeUser
) -> None:
    payer = await make_user()
    payee = await make_user(name="Dave Test", currency="GBP")
    found = await api.get(
        "/api/v1/recipients", token=payer.token, params={"email": payee.email.upper()}
    )
    assert found.status == 200, found.text
    assert found.body == {"email": payee.email, "name": "Dave Test", "currencies": ["GBP"]}
    unverified = await make_user(email_verified=False)
    answer = await api.get(
        "/api/v1/recipients", token=payer.token, params={"email": unverified.email}
    )
    assert (answer.status, answer.error_code) == (409, "recipient_unverified")
    nobody = await api.get(
        "/api/v1/recipients", token=payer.token, params={"email": "nobody@example.test"}
    )
    assert (nobody.status, nobody.error_code) == (404, "not_found")
    for bad in ({}, {"email": "not an address"}):
        invalid = await api.get("/api/v1/recipients", token=payer.token, params=bad)
        assert (invalid.status, invalid.error_code) == (422, "validation_error")
    assert (await api.get("/api/v1/recipients", params={"email": payee.email})).status == 401

    node, _ = await open_node(throttle_lookup_user="2/minute")
    for _ in range(2):
        seen = await node.get(
            "/api/v1/recipients", token=payer.token, params={"email": payee.email}
        )
        assert seen.status == 200
    throttled = await node.get(
        "/api/v1/recipients", token=payer.token, params={"email": payee.email}
    )
    assert (throttled.status, throttled.error_code) == (429, "rate_limited")
    assert throttled.headers["RateLimit-Limit"] == "2"
