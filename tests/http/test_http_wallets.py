"""Wallets: list, open (idempotently), read, and the transaction history pages."""

from __future__ import annotations

import uuid

import pytest
from httpkit import Api, MakeUser


async def test_list_wallets(api: Api, make_user: MakeUser) -> None:
    person = await make_user(currency="EUR")
    answer = await api.get("/api/v1/wallets", token=person.token)
    assert answer.status == 200
    assert answer.body == {"wallets": [person.wallet]}


async def test_open_a_second_wallet(api: Api, make_user: MakeUser) -> None:
    person = await make_user(currency="EUR")
    answer = await api.post("/api/v1/wallets", token=person.token, json={"currency": "USD"})
    assert answer.status == 201
    assert answer.body["currency"] == "USD"
    assert answer.body["balance"] == 0
    assert "Idempotent-Replayed" not in answer.headers
    wallets = await api.get("/api/v1/wallets", token=person.token)
    assert {wallet["currency"] for wallet in wallets.body["wallets"]} == {"EUR", "USD"}


async def test_one_wallet_per_currency(api: Api, make_user: MakeUser) -> None:
    person = await make_user(currency="EUR")
    answer = await api.post("/api/v1/wallets", token=person.token, json={"currency": "EUR"})
    assert answer.status == 409
    assert answer.error_code == "wallet_exists"


@pytest.mark.parametrize("currency", ["usd", "XXX", "", 840, None, ["USD"]])
async def test_open_wallet_with_a_bad_currency_is_422(
    api: Api, make_user: MakeUser, currency: object
) -> None:
    person = await make_user()
    answer = await api.post("/api/v1/wallets", token=person.token, json={"currency": currency})
    assert answer.status == 422
    assert answer.error_code == "validation_error"
    assert "currency" in answer.body["error"]["fields"]


async def test_open_wallet_replay_returns_the_first_answer(api: Api, make_user: MakeUser) -> None:
    person = await make_user()
    headers = {"Idempotency-Key": f"open-chf-{uuid.uuid4()}"}
    first = await api.post(
        "/api/v1/wallets", token=person.token, json={"currency": "CHF"}, headers=headers
    )
    again = await api.post(
        "/api/v1/wallets", token=person.token, json={"currency": "CHF"}, headers=headers
    )
    assert first.status == again.status == 201
    assert again.body == first.body
    assert again.headers["Idempotent-Replayed"] == "true"
    other = await api.post(
        "/api/v1/wallets", token=person.token, json={"currency": "SEK"}, headers=headers
    )
    assert other.status == 422
    assert other.error_code == "idempotency_key_reused"


@pytest.mark.parametrize("key", ["", "k" * 256, "tab\there", "naïve"])
async def test_malformed_idempotency_key_is_422(api: Api, make_user: MakeUser, key: str) -> None:
    person = await make_user()
    answer = await api.post(
        "/api/v1/wallets",
        token=person.token,
        json={"currency": "NOK"},
        headers={"Idempotency-Key": key},
    )
    assert answer.status == 422
    assert "Idempotency-Key" in answer.body["error"]["fields"]


async def test_get_wallet(api: Api, make_user: MakeUser) -> None:
    person = await make_user(balance=1234)
    answer = await api.get(f"/api/v1/wallets/{person.wallet_id}", token=person.token)
    assert answer.status == 200
    assert answer.body["balance"] == answer.body["available"] == 1234


async def test_unknown_wallet_is_404_and_someone_elses_is_403(
    api: Api, make_user: MakeUser
) -> None:
    owner, other = await make_user(), await make_user()
    for path in ("/api/v1/wallets/{}", "/api/v1/wallets/{}/transactions"):
        missing = await api.get(path.format("wal_missing"), token=owner.token)
        assert missing.status == 404
        assert missing.error_code == "not_found"
        weird = await api.get(path.format("%00%20'%22"), token=owner.token)
        assert weird.status == 404
        foreign = await api.get(path.format(owner.wallet_id), token=other.token)
        assert foreign.status == 403
        assert foreign.error_code == "forbidden"


async def test_history_pages_walk_every_transfer_once_newest_first(
    api: Api, make_user: MakeUser
) -> None:
    payer = await make_user(balance=10_000)
    payee = await make_user()
    sent = []
    for amount in range(1, 8):
        answer = await api.post(
            "/api/v1/transfers",
            token=payer.token,
            json={
                "from_wallet": payer.wallet_id,
                "to_wallet": payee.wallet_id,
                "amount": amount,
                "currency": "EUR",
            },
        )
        assert answer.status == 201
        sent.append(answer.body["id"])

    seen: list[dict[str, object]] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"limit": "3"} if cursor is None else {"limit": "3", "cursor": cursor}
        page = await api.get(
            f"/api/v1/wallets/{payer.wallet_id}/transactions", token=payer.token, params=params
        )
        assert page.status == 200
        assert len(page.body["items"]) <= 3
        seen.extend(page.body["items"])
        pages += 1
        cursor = page.body["next_cursor"]
        if cursor is None:
            break
    ids = [item["id"] for item in seen]
    assert len(ids) == len(set(ids)) == 8  # seven payments and the funding deposit
    assert ids[:7] == list(reversed(sent))  # newest first
    assert seen[-1]["kind"] == "deposit"
    assert pages == 3

    # The payee sees the same payments from the other side.
    payee_page = await api.get(f"/api/v1/wallets/{payee.wallet_id}/transactions", token=payee.token)
    assert [item["id"] for item in payee_page.body["items"]] == list(reversed(sent))


async def test_history_default_page(api: Api, make_user: MakeUser) -> None:
    person = await make_user()
    answer = await api.get(f"/api/v1/wallets/{person.wallet_id}/transactions", token=person.token)
    assert answer.status == 200
    assert answer.body == {"items": [], "next_cursor": None}


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "201"},
        {"limit": "-1"},
        {"limit": "ten"},
        {"limit": "1.5"},
        {"limit": ""},
        {"limit": "9" * 40},
        {"cursor": "not-a-cursor"},
        {"cursor": "s" + "9" * 600},
        {"cursor": "s12x"},
    ],
)
async def test_history_bad_limit_or_cursor_is_422(
    api: Api, make_user: MakeUser, params: dict[str, str]
) -> None:
    person = await make_user()
    answer = await api.get(
        f"/api/v1/wallets/{person.wallet_id}/transactions", token=person.token, params=params
    )
    assert answer.status == 422
    assert answer.error_code == "validation_error"
    assert set(answer.body["error"]["fields"]) == set(params)
