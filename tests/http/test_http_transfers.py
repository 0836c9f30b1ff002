"""Payments between wallets: the happy path, every refusal, idempotency, visibility."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from httpkit import Answer, Api, MakeUser, Person, pay_body, unique_email, wallet_balance

from transakt.money import MAX_AMOUNT


async def test_pay_another_wallet(api: Api, make_user: MakeUser) -> None:
    payer, payee = await make_user(balance=1_000), await make_user()
    answer = await api.post(
        "/api/v1/transfers", token=payer.token, json=pay_body(payer, payee, 250, memo="lunch")
    )
    assert answer.status == 201
    transfer = answer.body
    assert transfer["kind"] == "p2p"
    assert transfer["status"] == "posted"
    assert transfer["from_wallet"] == payer.wallet_id
    assert transfer["to_wallet"] == payee.wallet_id
    assert (transfer["amount"], transfer["currency"], transfer["memo"]) == (250, "EUR", "lunch")
    assert transfer["created_at"].endswith("Z")
    assert transfer["posted_at"].endswith("Z")
    assert await wallet_balance(api, payer) == 750
    assert await wallet_balance(api, payee) == 250


async def test_pay_by_email(api: Api, make_user: MakeUser) -> None:
    payer, payee = await make_user(balance=500), await make_user()
    body = pay_body(payer, payee, 200, to_wallet=..., to_email=payee.email.upper())
    answer = await api.post("/api/v1/transfers", token=payer.token, json=body)
    assert answer.status == 201, answer.text
    assert answer.body["to_wallet"] == payee.wallet_id
    assert answer.body["memo"] is None
    assert await wallet_balance(api, payee) == 200


@pytest.mark.parametrize(
    "amount",
    [1.0, 1.5, "100", True, False, 0, -1, MAX_AMOUNT + 1, 10**30, None, [100], {"v": 1}],
    ids=repr,
)
async def test_bad_amounts_are_422(api: Api, make_user: MakeUser, amount: Any) -> None:
    payer, payee = await make_user(balance=100), await make_user()
    answer = await api.post(
        "/api/v1/transfers", token=payer.token, json=pay_body(payer, payee, amount)
    )
    assert answer.status == 422
    assert answer.error_code == "validation_error"
    assert "amount" in answer.body["error"]["fields"]
    assert await wallet_balance(api, payer) == 100


async def test_amount_as_raw_json_float_is_422(api: Api, make_user: MakeUser) -> None:
    payer, payee = await make_user(balance=100), await make_user()
    raw = (
        f'{{"from_wallet": "{payer.wallet_id}", "to_wallet": "{payee.wallet_id}", '
        f'"amount": 1.0, "currency": "EUR"}}'
    )
    answer = await api.post(
        "/api/v1/transfers",
        token=payer.token,
        data=raw,
        headers={"Content-Type": "application/json"},
    )
    assert answer.status == 422
    assert "amount" in answer.body["error"]["fields"]


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        ({"currency": "EURO"}, {"currency"}),
        ({"currency": "eur"}, {"currency"}),
        ({"memo": "m" * 501}, {"memo"}),
        ({"memo": 5}, {"memo"}),
        ({"from_wallet": 7}, {"from_wallet"}),
        ({"from_wallet": ...}, {"from_wallet"}),
        ({"extra": 1}, {"extra"}),
        ({"to_wallet": ...}, {"to_wallet", "to_email"}),
        ({"to_email": "someone@example.test"}, {"to_wallet", "to_email"}),
        ({"to_wallet": ..., "to_email": "nope"}, {"to_email"}),
        ({"amount": ..., "currency": ...}, {"amount", "currency"}),
    ],
)
async def test_transfer_validation(
    api: Api, make_user: MakeUser, changes: dict[str, Any], fields: set[str]
) -> None:
    payer, payee = await make_user(balance=100), await make_user()
    answer = await api.post(
        "/api/v1/transfers", token=payer.token, json=pay_body(payer, payee, 10, **changes)
    )
    assert answer.status == 422
    assert answer.error_code == "validation_error"
    assert set(answer.body["error"]["fields"]) == fields


async def test_unknown_wallets_are_404(api: Api, make_user: MakeUser) -> None:
    payer, payee = await make_user(balance=100), await make_user()
    to_nowhere = await api.post(
        "/api/v1/transfers", token=payer.token, json=pay_body(payer, payee, to_wallet="wal_missing")
    )
    assert to_nowhere.status == 404
    from_nowhere = await api.post(
        "/api/v1/transfers",
        token=payer.token,
        json=pay_body(payer, payee, from_wallet="wal_missing"),
    )
    assert from_nowhere.status == 404
    assert to_nowhere.error_code == from_nowhere.error_code == "not_found"
    assert await wallet_balance(api, payer) == 100


async def test_paying_to_an_unknown_email_is_404(api: Api, make_user: MakeUser) -> None:
    payer, payee = await make_user(balance=100), await make_user()
    body = pay_body(payer, payee, to_wallet=..., to_email=unique_email("nobody"))
    answer = await api.post("/api/v1/transfers", token=payer.token, json=body)
    assert answer.status == 404
    assert answer.error_code == "not_found"


async def test_paying_from_someone_elses_wallet_is_403(api: Api, make_user: MakeUser) -> None:
    victim, thief = await make_user(balance=100), await make_user()
    answer = await api.post("/api/v1/transfers", token=thief.token, json=pay_body(victim, thief))
    assert answer.status == 403
    assert answer.error_code == "forbidden"
    assert await wallet_balance(api, victim) == 100


async def test_currency_mismatch_is_422(api: Api, make_user: MakeUser) -> None:
    euro, dollar = await make_user(balance=100), await make_user(currency="USD")
    wrong_currency = await api.post(
        "/api/v1/transfers", token=euro.token, json=pay_body(euro, dollar, currency="USD")
    )
    assert wrong_currency.status == 422
    assert wrong_currency.error_code == "currency_mismatch"
    other_wallet = await api.post(
        "/api/v1/transfers", token=euro.token, json=pay_body(euro, dollar)
    )
    assert other_wallet.status == 422
    assert other_wallet.error_code == "currency_mismatch"
    assert await wallet_balance(api, euro) == 100


async def test_insufficient_funds_is_409_and_nothing_moves(api: Api, make_user: MakeUser) -> None:
    payer, payee = await make_user(balance=100), await make_user()
    answer = await api.post(
        "/api/v1/transfers", token=payer.token, json=pay_body(payer, payee, 101)
    )
    assert answer.status == 409
    assert answer.error_code == "insufficient_funds"
    assert await wallet_balance(api, payer) == 100
    assert await wallet_balance(api, payee) == 0
    history = await api.get(f"/api/v1/wallets/{payer.wallet_id}/transactions", token=payer.token)
    assert [item["kind"] for item in history.body["items"]] == ["deposit"]


async def test_paying_the_same_wallet_is_422(api: Api, make_user: MakeUser) -> None:
    person = await make_user(balance=100)
    answer = await api.post("/api/v1/transfers", token=person.token, json=pay_body(person, person))
    assert answer.status == 422
    assert answer.error_code == "validation_error"
    by_email = await api.post(
        "/api/v1/transfers",
        token=person.token,
        json=pay_body(person, person, to_wallet=..., to_email=person.email),
    )
    assert by_email.status == 422
    assert await wallet_balance(api, person) == 100


async def test_replay_answers_the_first_response_and_moves_money_once(
    api: Api, make_user: MakeUser
) -> None:
    payer, payee = await make_user(balance=1_000), await make_user()
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    body = pay_body(payer, payee, 300)
    first = await api.post("/api/v1/transfers", token=payer.token, json=body, headers=headers)
    again = await api.post("/api/v1/transfers", token=payer.token, json=body, headers=headers)
    assert first.status == again.status == 201
    assert again.body == first.body
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert await wallet_balance(api, payer) == 700
    assert await wallet_balance(api, payee) == 300

    reused = await api.post(
        "/api/v1/transfers", token=payer.token, json=pay_body(payer, payee, 301), headers=headers
    )
    assert reused.status == 422
    assert reused.error_code == "idempotency_key_reused"
    assert await wallet_balance(api, payer) == 700


async def test_concurrent_replays_move_money_once(api: Api, make_user: MakeUser) -> None:
    payer, payee = await make_user(balance=1_000), await make_user()
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    answers = await asyncio.gather(
        *(
            api.post(
                "/api/v1/transfers",
                token=payer.token,
                json=pay_body(payer, payee, 10),
                headers=headers,
            )
            for _ in range(5)
        )
    )
    assert {answer.status for answer in answers} == {201}
    assert len({answer.body["id"] for answer in answers}) == 1
    assert await wallet_balance(api, payer) == 990


async def test_idempotency_keys_are_scoped_to_the_user(api: Api, make_user: MakeUser) -> None:
    alice, bob = await make_user(balance=100), await make_user(balance=100)
    headers = {"Idempotency-Key": "shared-key-" + uuid.uuid4().hex}
    first = await api.post(
        "/api/v1/transfers", token=alice.token, json=pay_body(alice, bob, 10), headers=headers
    )
    second = await api.post(
        "/api/v1/transfers", token=bob.token, json=pay_body(bob, alice, 20), headers=headers
    )
    assert first.status == second.status == 201
    assert first.body["id"] != second.body["id"]


async def test_idempotency_key_too_long_is_422(api: Api, make_user: MakeUser) -> None:
    payer, payee = await make_user(balance=100), await make_user()
    answer = await api.post(
        "/api/v1/transfers",
        token=payer.token,
        json=pay_body(payer, payee),
        headers={"Idempotency-Key": "k" * 256},
    )
    assert answer.status == 422
    assert await wallet_balance(api, payer) == 100


async def test_a_transfer_is_visible_to_both_parties_only(api: Api, make_user: MakeUser) -> None:
    payer, payee, stranger = await make_user(balance=100), await make_user(), await make_user()
    created = await api.post(
        "/api/v1/transfers", token=payer.token, json=pay_body(payer, payee, 40)
    )
    path = f"/api/v1/transfers/{created.body['id']}"
    for person in (payer, payee):
        answer = await api.get(path, token=person.token)
        assert answer.status == 200
        # The transfer as created, and the names both holders' banks confirmed.
        assert answer.body == {**created.body, "from_name": payer.name, "to_name": payee.name}
    hidden = await api.get(path, token=stranger.token)
    assert hidden.status == 404
    assert hidden.error_code == "not_found"
    missing = await api.get("/api/v1/transfers/trf_missing", token=payer.token)
    assert missing.status == 404


async def test_money_is_conserved_across_many_payments(api: Api, make_user: MakeUser) -> None:
    people = [await make_user(balance=1_000) for _ in range(4)]
    payments = [(people[i % 4], people[(i + 1) % 4], 7 + i) for i in range(40)]
    # Each payer's payments add up to less than its opening balance: in whatever order they
    # land, none can be refused, so every one of them must move money.
    outflows: dict[str, int] = {}
    for payer, _payee, amount in payments:
        outflows[payer.wallet_id] = outflows.get(payer.wallet_id, 0) + amount
    assert max(outflows.values()) < 1_000

    async def pay(payer: Person, payee: Person, amount: int) -> Answer:
        return await api.post(
            "/api/v1/transfers", token=payer.token, json=pay_body(payer, payee, amount)
        )

    answers = await asyncio.gather(*(pay(*payment) for payment in payments))
    statuses = [answer.status for answer in answers]
    assert set(statuses) <= {201, 409}
    assert statuses.count(201) == len(payments), [a.text for a in answers if a.status != 201]
    # The client's books, from what was acknowledged: the server's must match them exactly.
    books = {person.wallet_id: 1_000 for person in people}
    for (payer, payee, amount), answer in zip(payments, answers, strict=True):
        assert answer.body["status"] == "posted"
        assert (answer.body["from_wallet"], answer.body["to_wallet"], answer.body["amount"]) == (
            payer.wallet_id,
            payee.wallet_id,
            amount,
        )
        books[payer.wallet_id] -= amount
        books[payee.wallet_id] += amount
    assert len({answer.body["id"] for answer in answers}) == len(payments)
    balances = [await wallet_balance(api, person) for person in people]
    assert sum(balances) == 4_000
    assert min(balances) >= 0
    assert balances == [books[person.wallet_id] for person in people]
    assert balances != [1_000] * 4, "money moved, so balances changed"


@pytest.mark.parametrize("memo", [r"\ud800", r"nul\u0000", r"bell\u0007"])
async def test_memo_with_characters_that_cannot_be_stored_is_422(
    api: Api, make_user: MakeUser, memo: str
) -> None:
    payer, payee = await make_user(balance=100), await make_user()
    raw = (
        f'{{"from_wallet": "{payer.wallet_id}", "to_wallet": "{payee.wallet_id}", '
        f'"amount": 1, "currency": "EUR", "memo": "{memo}"}}'
    )
    answer = await api.post(
        "/api/v1/transfers",
        token=payer.token,
        data=raw,
        headers={"Content-Type": "application/json", "Idempotency-Key": "memo-" + memo[1:]},
    )
    assert answer.status == 422
    assert set(answer.body["error"]["fields"]) == {"memo"}


async def test_memo_may_hold_newlines_and_any_language(api: Api, make_user: MakeUser) -> None:
    payer, payee = await make_user(balance=100), await make_user()
    memo = "Miete März\n家賃 🎉"
    answer = await api.post(
        "/api/v1/transfers", token=payer.token, json=pay_body(payer, payee, 1, memo=memo)
    )
    assert answer.status == 201
    assert answer.body["memo"] == memo
