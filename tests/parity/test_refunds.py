"""Refunds: the payee pays a payment back, never more than it in total, once per key."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
from httpkit import Api, Fund, MakeUser, pay_body, wallet_balance

from transakt.storage.audit import ledger_violations


async def _paid(api: Api, make_user: MakeUser, amount: int = 1_000):  # type: ignore[no-untyped-def]
    payer, payee = await make_user(balance=amount), await make_user()
    answer = await api.post(
        "/api/v1/transfers", token=payer.token, json=pay_body(payer, payee, amount)
    )
    assert answer.status == 201, answer.text
    return payer, payee, answer.body["id"]


async def test_a_payee_refunds_in_parts_and_never_more_than_the_payment(
    api: Api, make_user: MakeUser, wallet_pool: asyncpg.Pool
) -> None:
    payer, payee, paid = await _paid(api, make_user)
    path = f"/api/v1/transfers/{paid}/refund"
    first = await api.post(path, token=payee.token, json={"amount": 300})
    assert first.status == 201, first.text
    assert (first.body["refund_of"], first.body["amount"]) == (paid, 300)
    assert (first.body["from_wallet"], first.body["to_wallet"]) == (
        payee.wallet_id,
        payer.wallet_id,
    )
    assert (await wallet_balance(api, payer), await wallet_balance(api, payee)) == (300, 700)
    too_much = await api.post(path, token=payee.token, json={"amount": 701})
    assert too_much.status == 409 and too_much.error_code == "refund_refused"
    assert too_much.body["error"]["refundable"] == 700
    rest = await api.post(path, token=payee.token)  # no body: all that is left
    assert rest.status == 201 and rest.body["amount"] == 700, rest.text
    again = await api.post(path, token=payee.token, json={"amount": 1})
    assert again.status == 409 and again.error_code == "refund_refused"
    listed = await api.get(f"/api/v1/transfers/{paid}/refunds", token=payer.token)
    assert [item["amount"] for item in listed.body["items"]] == [300, 700]
    assert (await wallet_balance(api, payer), await wallet_balance(api, payee)) == (1_000, 0)
    assert await ledger_violations(wallet_pool) == []


async def test_only_the_payee_refunds_and_only_posted_payments(
    api: Api, make_user: MakeUser
) -> None:
    payer, payee, paid = await _paid(api, make_user)
    stranger = await make_user()
    path = f"/api/v1/transfers/{paid}/refund"
    assert (await api.post(path, token=payer.token)).error_code == "forbidden"
    assert (await api.post(path, token=stranger.token)).status == 404
    assert (await api.post(path)).status == 401
    assert (await api.get(f"/api/v1/transfers/{paid}/refunds", token=stranger.token)).status == 404
    missing = await api.post(f"/api/v1/transfers/trf_{uuid.uuid4().hex}/refund", token=payee.token)
    assert missing.status == 404
    bad = await api.post(path, token=payee.token, json={"amount": -5})
    assert bad.status == 422
    refund = await api.post(path, token=payee.token, json={"amount": 10})
    of_refund = await api.post(f"/api/v1/transfers/{refund.body['id']}/refund", token=payer.token)
    assert of_refund.status == 409 and of_refund.error_code == "refund_refused"


async def test_concurrent_refunds_never_exceed_the_payment(
    api: Api, make_user: MakeUser, wallet_pool: asyncpg.Pool, fund: Fund
) -> None:
    _payer, payee, paid = await _paid(api, make_user)
    await fund(payee.wallet_id, 10_000)  # the payee's money is not what stops them: the ledger is
    answers = await asyncio.gather(
        *(
            api.post(f"/api/v1/transfers/{paid}/refund", token=payee.token, json={"amount": 300})
            for _ in range(8)
        )
    )
    made = [a for a in answers if a.status == 201]
    assert len(made) == 3, [(a.status, a.error_code) for a in answers]
    assert {a.error_code for a in answers if a.status != 201} == {"refund_refused"}
    total = await wallet_pool.fetchval(
        "SELECT sum(amount) FROM transfer_refunds WHERE original_id = $1", paid
    )
    assert total == 900
    assert await ledger_violations(wallet_pool) == []


async def test_a_keyed_refund_is_made_once(
    api: Api, make_user: MakeUser, wallet_pool: asyncpg.Pool
) -> None:
    _payer, payee, paid = await _paid(api, make_user)
    headers = {"Idempotency-Key": f"refund-{uuid.uuid4()}"}
    path = f"/api/v1/transfers/{paid}/refund"
    answers = await asyncio.gather(
        *(
            api.post(path, token=payee.token, json={"amount": 250}, headers=headers)
            for _ in range(6)
        )
    )
    assert {(a.status, str(a.body)) for a in answers} == {(201, str(answers[0].body))}
    count = await wallet_pool.fetchval(
        "SELECT count(*) FROM transfer_refunds WHERE original_id = $1", paid
    )
    assert count == 1
    other = await api.post(path, token=payee.token, json={"amount": 5}, headers=headers)
    assert other.status == 422 and other.error_code == "idempotency_key_reused"


async def test_parties_read_each_others_bank_confirmed_names(api: Api, make_user: MakeUser) -> None:
    payer = await make_user(balance=100, name="Dave Test")
    payee = await make_user(name="Erin Example")
    paid = await api.post("/api/v1/transfers", token=payer.token, json=pay_body(payer, payee, 5))
    assert paid.status == 201
    assert "from_name" not in paid.body  # the answer is the transfer as committed, replayable
    read = await api.get(f"/api/v1/transfers/{paid.body['id']}", token=payee.token)
    assert (read.body["from_name"], read.body["to_name"]) == ("Dave Test", "Erin Example")
    page = await api.get(f"/api/v1/wallets/{payee.wallet_id}/transactions", token=payee.token)
    names = {(item["from_name"], item.get("to_name")) for item in page.body["items"]}
    assert ("Dave Test", "Erin Example") in names
