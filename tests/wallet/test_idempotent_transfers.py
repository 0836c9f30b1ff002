"""A keyed payment is not looked up before it runs: the ledger finds replays by transfer id.

These pin down that the answers stay those of the contract whatever a replay runs into on the
way: the first response for the same body (even when the wallet could no longer pay it, or
could pay it by now), and ``idempotency_key_reused`` for another body, whichever refusal that
body would otherwise get.
"""

from __future__ import annotations

import uuid

from httpkit import Api, MakeUser, pay_body, wallet_balance


async def test_a_replay_is_answered_even_after_the_wallet_spent_the_money(
    api: Api, make_user: MakeUser
) -> None:
    payer, payee, other = await make_user(balance=500), await make_user(), await make_user()
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = await api.post(
        "/api/v1/transfers", token=payer.token, json=pay_body(payer, payee, 400), headers=key
    )
    assert first.status == 201
    spend = await api.post("/api/v1/transfers", token=payer.token, json=pay_body(payer, other, 100))
    assert spend.status == 201  # the wallet is empty now
    again = await api.post(
        "/api/v1/transfers", token=payer.token, json=pay_body(payer, payee, 400), headers=key
    )
    assert again.status == 201
    assert again.body == first.body
    assert again.headers["Idempotent-Replayed"] == "true"
    assert (await wallet_balance(api, payer), await wallet_balance(api, payee)) == (0, 400)


async def test_another_body_under_a_used_key_is_reused_whatever_else_it_breaks(
    api: Api, make_user: MakeUser
) -> None:
    payer, payee = await make_user(balance=500), await make_user()
    dollars = await make_user(currency="USD")
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = await api.post(
        "/api/v1/transfers", token=payer.token, json=pay_body(payer, payee, 100), headers=key
    )
    assert first.status == 201
    bodies = [
        pay_body(payer, payee, 101),  # would pass: only the key says no
        pay_body(payer, payee, 10_000),  # more than the wallet holds
        pay_body(payer, dollars, 100),  # a wallet in another currency
        pay_body(payer, payee, 100, to_wallet="wal_" + uuid.uuid4().hex),  # no such wallet
    ]
    for body in bodies:
        answer = await api.post("/api/v1/transfers", token=payer.token, json=body, headers=key)
        assert (answer.status, answer.error_code) == (422, "idempotency_key_reused"), body
    assert (await wallet_balance(api, payer), await wallet_balance(api, payee)) == (400, 100)


async def test_a_refused_keyed_payment_replays_its_refusal_and_never_moves_money_later(
    api: Api, make_user: MakeUser
) -> None:
    payer, payee = await make_user(balance=50), await make_user()
    key = {"Idempotency-Key": str(uuid.uuid4())}
    body = pay_body(payer, payee, 80)
    refused = await api.post("/api/v1/transfers", token=payer.token, json=body, headers=key)
    assert (refused.status, refused.error_code) == (409, "insufficient_funds")
    assert "Idempotent-Replayed" not in refused.headers
    top_up = await make_user(balance=100)
    gift = await api.post(
        "/api/v1/transfers", token=top_up.token, json=pay_body(top_up, payer, 100)
    )
    assert gift.status == 201
    # The wallet could pay now, but the key was answered: a delayed retry gets that answer.
    again = await api.post("/api/v1/transfers", token=payer.token, json=body, headers=key)
    assert (again.status, again.body) == (refused.status, refused.body)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert (await wallet_balance(api, payer), await wallet_balance(api, payee)) == (150, 0)
    # A new key is a new request, and passes.
    fresh = {"Idempotency-Key": str(uuid.uuid4())}
    passed = await api.post("/api/v1/transfers", token=payer.token, json=body, headers=fresh)
    assert passed.status == 201
    assert (await wallet_balance(api, payer), await wallet_balance(api, payee)) == (70, 80)
