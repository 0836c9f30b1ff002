"""Fraud review: a payment that trips a rule is held (pending, its amount reserved), an
operator approves it (posted: the money moves) or rejects it (voided: the hold is released),
and that decision is final and recorded."""

from __future__ import annotations

from typing import Any

import asyncpg
from httpkit import Api, MakeUser, Person, pay_body

from transakt.cli.operators import grant
from transakt.storage.audit import ledger_violations


async def pay(api: Api, payer: Person, payee: Person, amount: int, **headers: str) -> Any:
    return await api.post(
        "/api/v1/transfers",
        token=payer.token,
        json=pay_body(payer, payee, amount),
        headers=headers or None,
    )


async def wallet(api: Api, person: Person) -> dict[str, Any]:
    answer = await api.get(f"/api/v1/wallets/{person.wallet_id}", token=person.token)
    assert answer.status == 200
    return dict(answer.body)


async def decide(api: Api, who: Person, transfer_id: str, decision: str, note: Any) -> Any:
    return await api.post(
        f"/api/v1/reviews/{transfer_id}/{decision}", token=who.token, json={"note": note}
    )


def assert_held(answer: Any, *reasons: str) -> str:
    assert answer.status == 202, answer.text
    body = answer.body
    assert body["kind"] == "p2p" and body["status"] == "pending"
    assert body["review"]["status"] == "under_review"
    assert set(reasons) <= set(body["review"]["reasons"]), body["review"]
    return str(body["id"])


async def test_velocity_by_count_holds_the_payment_past_the_count(
    review_api: Api, make_user: MakeUser
) -> None:
    payer, payee = await make_user(balance=10_000), await make_user()
    for _ in range(5):
        assert (await pay(review_api, payer, payee, 100)).status == 201
    held = await pay(review_api, payer, payee, 100)
    transfer_id = assert_held(held, "velocity_count")
    assert held.body["review"]["reasons"] == ["velocity_count"]
    # Reserved like a hold: the balance is still there, not available; the payee sees it coming.
    payer_wallet, payee_wallet = await wallet(review_api, payer), await wallet(review_api, payee)
    assert payer_wallet["balance"] == 9_500 and payer_wallet["available"] == 9_400
    assert payer_wallet["pending_out"] == 100
    assert payee_wallet["balance"] == 500 and payee_wallet["pending_in"] == 100
    # The payer sees "under review" with the reasons; the payee the status only.
    seen = await review_api.get(f"/api/v1/transfers/{transfer_id}", token=payer.token)
    assert seen.body["review"] == {"status": "under_review", "reasons": ["velocity_count"]}
    seen = await review_api.get(f"/api/v1/transfers/{transfer_id}", token=payee.token)
    assert seen.body["review"] == {"status": "under_review"}
    history = await review_api.get(
        f"/api/v1/wallets/{payer.wallet_id}/transactions", token=payer.token
    )
    newest = history.body["items"][0]
    assert newest["id"] == transfer_id and newest["review"]["status"] == "under_review"
    assert "review" not in history.body["items"][1]  # a posted payment was never reviewed


async def test_velocity_by_amount_holds_the_payment_that_passes_the_sum(
    review_api: Api, make_user: MakeUser
) -> None:
    payer, payee = await make_user(balance=2_000_000), await make_user()
    assert (await pay(review_api, payer, payee, 150_000)).status == 201
    assert (await pay(review_api, payer, payee, 150_000)).status == 201
    # A third of the same would be 450,000: still under the window's sum.
    assert (await pay(review_api, payer, payee, 150_000)).status == 201
    held = await pay(review_api, payer, payee, 199_999 + 400_000)  # 1,049,999 in the window
    assert_held(held, "velocity_amount")


async def test_an_amount_far_above_the_payers_usual_is_held_once_there_is_a_history(
    review_api: Api, make_user: MakeUser
) -> None:
    payer, payee = await make_user(balance=100_000), await make_user()
    # No history yet: a large payment (under the new-recipient amount) is not unusual.
    assert (await pay(review_api, payer, payee, 5_000)).status == 201
    assert (await pay(review_api, payer, payee, 100)).status == 201
    assert (await pay(review_api, payer, payee, 100)).status == 201
    # The median of (5000, 100, 100) is 100: ten times that passes...
    assert (await pay(review_api, payer, payee, 1_000)).status == 201
    # ... and now, the median of (5000, 100, 100, 1000) being 550, 5,501 is held.
    held = await pay(review_api, payer, payee, 5_501)
    assert held.status == 202 and held.body["review"]["reasons"] == ["unusual_amount"]


async def test_a_large_first_payment_to_a_new_recipient_is_held_and_approval_posts_it(
    review_api: Api, make_user: MakeUser, operator: Person, wallet_pool: asyncpg.Pool
) -> None:
    payer, payee = await make_user(balance=1_000_000), await make_user()
    assert (await pay(review_api, payer, payee, 199_999)).status == 201  # under the amount
    stranger = await make_user()
    held = await pay(review_api, payer, stranger, 200_000)
    transfer_id = assert_held(held, "new_recipient")
    assert held.body["review"]["reasons"] == ["new_recipient"]
    # Paid before (posted): not new.
    assert (await pay(review_api, payer, payee, 200_000)).status == 201

    queue = await review_api.get("/api/v1/reviews", token=operator.token)
    assert queue.status == 200
    items = {item["transfer"]["id"]: item for item in queue.body["items"]}
    assert items[transfer_id]["review"]["reasons"] == ["new_recipient"]
    assert items[transfer_id]["review"]["status"] == "under_review"

    approved = await decide(review_api, operator, transfer_id, "approve", "called the payer")
    assert approved.status == 200, approved.text
    assert approved.body["transfer"]["status"] == "posted"
    review = approved.body["review"]
    assert review["status"] == "approved" and review["note"] == "called the payer"
    assert review["decided_by"] == operator.user_id and review["decided_at"]
    # The money moved: posted out of the payer's balance, into the stranger's.
    payer_wallet = await wallet(review_api, payer)
    assert payer_wallet["balance"] == 1_000_000 - 599_999 and payer_wallet["pending_out"] == 0
    assert (await wallet(review_api, stranger))["balance"] == 200_000
    seen = await review_api.get(f"/api/v1/transfers/{transfer_id}", token=payer.token)
    assert seen.body["status"] == "posted" and seen.body["review"]["status"] == "approved"
    assert "note" not in seen.body["review"] and "decided_by" not in seen.body["review"]
    # Final: a second decision, either way, is a conflict; the recorded one stands.
    again = await decide(review_api, operator, transfer_id, "reject", "changed my mind")
    assert again.status == 409 and again.error_code == "review_decided"
    assert again.body["error"]["decision"] == "approved"
    row = await wallet_pool.fetchrow(
        "SELECT status, decided_by, note FROM transfer_reviews WHERE transfer_id = $1",
        transfer_id,
    )
    assert dict(row) == {"status": "approved", "decided_by": operator.user_id,
                         "note": "called the payer"}  # fmt: skip
    assert transfer_id not in {
        item["transfer"]["id"]
        for item in (await review_api.get("/api/v1/reviews", token=operator.token)).body["items"]
    }
    decided = await review_api.get("/api/v1/reviews?status=decided", token=operator.token)
    assert decided.status == 200
    assert await ledger_violations(wallet_pool) == []


async def test_rejection_voids_the_payment_releases_the_hold_and_gives_the_limit_back(
    review_api: Api, make_user: MakeUser, operator: Person, wallet_pool: asyncpg.Pool
) -> None:
    payer, stranger, friend = (
        await make_user(balance=1_000_000),
        await make_user(),
        await make_user(),
    )
    limits = await review_api.request(
        "PUT",
        f"/api/v1/wallets/{payer.wallet_id}/limits",
        token=payer.token,
        json={"daily": 300_000, "monthly": None},
    )
    assert limits.status == 200
    transfer_id = assert_held(await pay(review_api, payer, stranger, 250_000), "new_recipient")
    # The held amount counts against the limit (it is promised money).
    refused = await pay(review_api, payer, friend, 60_000)
    assert refused.status == 409 and refused.error_code == "limit_exceeded"
    assert refused.body["error"]["remaining"] == 50_000

    rejected = await decide(review_api, operator, transfer_id, "reject", "looks like fraud")
    assert rejected.status == 200, rejected.text
    assert rejected.body["transfer"]["status"] == "voided"
    assert rejected.body["transfer"]["reason"] == "declined after review"
    payer_wallet = await wallet(review_api, payer)
    assert payer_wallet["balance"] == 1_000_000 and payer_wallet["available"] == 1_000_000
    stranger_wallet = await wallet(review_api, stranger)
    assert stranger_wallet["balance"] == 0 and stranger_wallet["pending_in"] == 0
    # The voided amount no longer counts: the whole limit is there again.
    assert (await pay(review_api, payer, friend, 150_000)).status == 201
    assert (await pay(review_api, payer, friend, 150_000)).status == 201
    assert (await pay(review_api, payer, friend, 1)).status == 409
    seen = await review_api.get(f"/api/v1/transfers/{transfer_id}", token=payer.token)
    assert seen.body["status"] == "voided" and seen.body["review"]["status"] == "rejected"
    again = await decide(review_api, operator, transfer_id, "approve", "oops")
    assert again.status == 409 and again.error_code == "review_decided"
    assert await ledger_violations(wallet_pool) == []


async def test_only_operators_review_and_a_decision_needs_a_note(
    review_api: Api, make_user: MakeUser, operator: Person, database_url: str
) -> None:
    payer, stranger = await make_user(balance=1_000_000), await make_user()
    transfer_id = assert_held(await pay(review_api, payer, stranger, 300_000), "new_recipient")
    # Neither the payer nor anyone else who is not an operator.
    for person in (payer, stranger):
        listed = await review_api.get("/api/v1/reviews", token=person.token)
        assert listed.status == 403 and listed.error_code == "forbidden"
        decided = await decide(review_api, person, transfer_id, "approve", "mine")
        assert decided.status == 403
    assert (await review_api.get("/api/v1/reviews")).status == 401
    for note in ("", "   ", None, 5):
        answer = await decide(review_api, operator, transfer_id, "approve", note)
        assert answer.status == 422 and answer.error_code == "validation_error", note
    bad = await review_api.post(
        f"/api/v1/reviews/{transfer_id}/approve", token=operator.token, json={}
    )
    assert bad.status == 422
    assert (await review_api.get("/api/v1/reviews?status=all", token=operator.token)).status == 422
    # Only held payments have a review.
    posted = await pay(review_api, payer, stranger, 10)
    assert posted.status == 201
    missing = await decide(review_api, operator, posted.body["id"], "approve", "why not")
    assert missing.status == 404
    missing = await decide(review_api, operator, "trf_nope", "approve", "why not")
    assert missing.status == 404
    # Still held: nothing above decided it.
    seen = await review_api.get(f"/api/v1/transfers/{transfer_id}", token=payer.token)
    assert seen.body["status"] == "pending"
    assert await grant(database_url, "nobody-at-all@example.test", "test") is None


async def test_a_held_payment_replays_under_its_key(review_api: Api, make_user: MakeUser) -> None:
    payer, stranger = await make_user(balance=1_000_000), await make_user()
    key = {"Idempotency-Key": "held-once"}
    first = await pay(review_api, payer, stranger, 300_000, **key)
    transfer_id = assert_held(first, "new_recipient")
    again = await pay(review_api, payer, stranger, 300_000, **key)
    assert again.status == 202 and again.headers.get("Idempotent-Replayed") == "true"
    assert again.body["id"] == transfer_id and again.body["status"] == "pending"
    payer_wallet = await wallet(review_api, payer)
    assert payer_wallet["pending_out"] == 300_000  # held once


async def test_an_operator_does_not_decide_a_payment_they_are_a_party_to(
    review_api: Api, make_user: MakeUser, operator: Person, database_url: str
) -> None:
    other_operator = await make_user(balance=1_000_000)
    assert await grant(database_url, other_operator.email, "test") is True
    # The operator's own held payment, and one held on its way to them.
    own = assert_held(await pay(review_api, other_operator, operator, 300_000), "new_recipient")
    answer = await decide(review_api, operator, own, "approve", "it is mine")
    assert answer.status == 403 and answer.error_code == "forbidden"
    answer = await decide(review_api, other_operator, own, "approve", "it is mine")
    assert answer.status == 403
    assert (await decide(review_api, operator, own, "reject", "not theirs")).status == 403
    # Nobody decided: still held, and a third operator may.
    third = await make_user()
    assert await grant(database_url, third.email, "test") is True
    assert (await decide(review_api, third, own, "approve", "checked")).status == 200
