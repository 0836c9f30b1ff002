"""Batch transfers: atomic (all or none) and independent (each on its own), through the real
wallet actors, group-commit writer and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
import warnings
from typing import Any

import asyncpg
from httpkit import Api, MakeUser, Person, pay_body, wallet_balance

from transakt.actors.wallet import DebitMany, ItemOutcome, ManyOutcome
from transakt.composition.cluster import wallet_codec
from transakt.errors import InsufficientFunds
from transakt.storage.audit import ledger_violations
from transakt.storage.records import NewTransfer

BATCH = "/api/v1/transfers/batch"


def batch(payer: Person, items: list[dict[str, Any]], mode: str = "atomic") -> dict[str, Any]:
    """A batch from the payer's first wallet."""
    return {
        "from_wallet": payer.wallet_id,
        "currency": payer.wallet["currency"],
        "mode": mode,
        "transfers": items,
    }


def to(payee: Person, amount: int, **extra: Any) -> dict[str, Any]:
    return {"to_wallet": payee.wallet_id, "amount": amount, **extra}


async def count_from(pool: asyncpg.Pool, wallet_id: str) -> int:
    value: int = await pool.fetchval(
        "SELECT count(*) FROM transfers WHERE from_account = $1", wallet_id
    )
    return value


async def test_an_atomic_batch_pays_everyone_in_one_commit(
    api: Api, make_user: MakeUser, wallet_pool: asyncpg.Pool
) -> None:
    payer = await make_user(balance=1_000)
    payees = [await make_user() for _ in range(3)]
    answer = await api.post(
        BATCH,
        token=payer.token,
        json=batch(payer, [to(p, 100 * (n + 1), memo=f"n{n}") for n, p in enumerate(payees)]),
    )
    assert answer.status == 201, answer.text
    assert (answer.body["mode"], answer.body["applied"], answer.body["refused"]) == (
        "atomic",
        3,
        0,
    )
    results = answer.body["results"]
    assert [r["index"] for r in results] == [0, 1, 2]
    assert [r["transfer"]["amount"] for r in results] == [100, 200, 300]
    assert {r["transfer"]["status"] for r in results} == {"posted"}
    assert await wallet_balance(api, payer) == 400
    assert [await wallet_balance(api, p) for p in payees] == [100, 200, 300]
    # One transaction: every transfer carries the same commit time.
    assert len({r["transfer"]["created_at"] for r in results}) == 1
    # Each one writes its outbox event, as a single payment does (live feed, e-mails).
    ids = [r["transfer"]["id"] for r in results]
    events = await wallet_pool.fetchval(
        "SELECT count(*) FROM outbox WHERE payload->'transfer'->>'id' = ANY($1::text[])", ids
    )
    assert events == 3


async def test_an_atomic_batch_with_one_overdraft_applies_nothing(
    api: Api, make_user: MakeUser, wallet_pool: asyncpg.Pool
) -> None:
    payer = await make_user(balance=500)
    payees = [await make_user() for _ in range(3)]
    items = [to(payees[0], 200), to(payees[1], 200), to(payees[2], 101)]  # 501 > 500
    answer = await api.post(BATCH, token=payer.token, json=batch(payer, items))
    assert answer.status == 409 and answer.error_code == "insufficient_funds", answer.text
    assert answer.body["error"]["amount"] == 501
    assert await wallet_balance(api, payer) == 500
    assert [await wallet_balance(api, p) for p in payees] == [0, 0, 0]
    assert await count_from(wallet_pool, payer.wallet_id) == 0


async def test_an_atomic_batch_names_the_payment_at_fault(
    api: Api, make_user: MakeUser, wallet_pool: asyncpg.Pool
) -> None:
    payer, payee = await make_user(balance=500), await make_user()
    items = [
        to(payee, 10),
        {"to_wallet": f"wal_{uuid.uuid4().hex}", "amount": 10, "reference": "inv-2"},
    ]
    answer = await api.post(BATCH, token=payer.token, json=batch(payer, items))
    assert answer.status == 404 and answer.error_code == "not_found", answer.text
    assert (answer.body["error"]["index"], answer.body["error"]["reference"]) == (1, "inv-2")
    assert await count_from(wallet_pool, payer.wallet_id) == 0


async def test_an_independent_batch_of_1000_applies_exactly_the_valid_ones(
    api: Api, make_user: MakeUser, wallet_pool: asyncpg.Pool
) -> None:
    payer = await make_user(balance=50_000)
    payees = [await make_user() for _ in range(4)]
    unverified = await make_user(email_verified=False)
    items: list[dict[str, Any]] = []
    expected: list[str] = []
    spent = 0
    for n in range(1_000):
        kind = n % 10
        if kind == 7:
            items.append({"to_wallet": f"wal_{uuid.uuid4().hex}", "amount": 1})
            expected.append("not_found")
        elif kind == 8:
            items.append({"to_email": unverified.email, "amount": 1})
            expected.append("recipient_unverified")
        elif kind == 9:
            items.append({"to_wallet": payer.wallet_id, "amount": 1})
            expected.append("validation_error")
        else:
            amount = 100 if n < 900 else 5_000  # the last ones overdraw
            if spent + amount <= 50_000:
                spent += amount
                expected.append("applied")
            else:
                expected.append("insufficient_funds")
            items.append(to(payees[n % 4], amount))
    answer = await api.post(BATCH, token=payer.token, json=batch(payer, items, "independent"))
    assert answer.status == 200, answer.text[:500]
    got = [
        "applied" if r["status"] == "applied" else r["error"]["code"]
        for r in answer.body["results"]
    ]
    assert got == expected
    applied = expected.count("applied")
    assert answer.body["applied"] == applied and answer.body["refused"] == 1_000 - applied
    assert await count_from(wallet_pool, payer.wallet_id) == applied
    assert await wallet_balance(api, payer) == 50_000 - spent
    assert sum([await wallet_balance(api, p) for p in payees]) == spent
    assert await ledger_violations(wallet_pool) == []


async def test_a_keyed_batch_replays_its_answer_and_pays_once(
    api: Api, make_user: MakeUser, wallet_pool: asyncpg.Pool
) -> None:
    payer, payee = await make_user(balance=1_000), await make_user()
    body = batch(payer, [to(payee, 100), to(payee, 5_000), to(payee, 50)], "independent")
    headers = {"Idempotency-Key": f"batch-{uuid.uuid4()}"}
    answers = await asyncio.gather(
        *(api.post(BATCH, token=payer.token, json=body, headers=headers) for _ in range(5))
    )
    assert {(a.status, str(a.body)) for a in answers} == {(200, str(answers[0].body))}
    assert sum("Idempotent-Replayed" not in a.headers for a in answers) == 1
    assert await wallet_balance(api, payer) == 850
    # The refused payment stays refused even once the money is there.
    await api.post("/api/v1/transfers", token=payee.token, json=pay_body(payee, payer, 150))
    again = await api.post(BATCH, token=payer.token, json=body, headers=headers)
    assert again.body == answers[0].body and again.headers["Idempotent-Replayed"] == "true"
    assert await count_from(wallet_pool, payer.wallet_id) == 2
    other = await api.post(
        BATCH, token=payer.token, json={**body, "mode": "atomic"}, headers=headers
    )
    assert other.status == 422 and other.error_code == "idempotency_key_reused", other.text


async def test_a_reference_pays_once_across_batches(
    api: Api, make_user: MakeUser, wallet_pool: asyncpg.Pool
) -> None:
    payer, payee = await make_user(balance=1_000), await make_user()
    first = await api.post(
        BATCH, token=payer.token, json=batch(payer, [to(payee, 100, reference="payroll-7")])
    )
    assert first.status == 201, first.text
    made = first.body["results"][0]["transfer"]
    second = await api.post(
        BATCH,
        token=payer.token,
        json=batch(payer, [to(payee, 100, reference="payroll-7"), to(payee, 1)], "independent"),
    )
    assert second.status == 200, second.text
    assert second.body["results"][0]["transfer"] == made
    assert await wallet_balance(api, payer) == 899
    changed = await api.post(
        BATCH,
        token=payer.token,
        json=batch(payer, [to(payee, 150, reference="payroll-7")], "independent"),
    )
    assert changed.body["results"][0]["error"]["code"] == "idempotency_key_reused"
    assert await count_from(wallet_pool, payer.wallet_id) == 2
    twice = await api.post(
        BATCH,
        token=payer.token,
        json=batch(payer, [to(payee, 1, reference="r"), to(payee, 2, reference="r")]),
    )
    assert twice.status == 422 and twice.error_code == "validation_error"


async def test_batches_refuse_bad_input_and_other_peoples_wallets(
    api: Api, make_user: MakeUser, wallet_pool: asyncpg.Pool
) -> None:
    payer, payee, stranger = await make_user(balance=100), await make_user(), await make_user()
    bad_bodies: list[Any] = [
        batch(payer, []),
        batch(payer, [to(payee, 1)] * 1_001),
        batch(payer, [to(payee, 1)], "eventually"),
        batch(payer, [to(payee, 0)]),
        batch(payer, [to(payee, 1.5)]),
        batch(payer, [to(payee, 1, reference="no spaces")]),
        batch(payer, [{"amount": 1}]),
        {**batch(payer, [to(payee, 1)]), "currency": "XYZ"},
        [to(payee, 1)],
    ]
    for body in bad_bodies:
        answer = await api.post(BATCH, token=payer.token, json=body)
        assert answer.status == 422, body if not isinstance(body, dict) else body.get("mode")
    foreign = batch(payer, [to(payee, 1)]) | {"from_wallet": stranger.wallet_id}
    answer = await api.post(BATCH, token=payer.token, json=foreign)
    assert answer.status == 403 and answer.error_code == "forbidden"
    huge = batch(payer, [to(payee, 1, memo="x" * 500)] * 1_000) | {"pad": "y" * 600_000}
    with warnings.catch_warnings():  # the client warns about sending a megabyte at once
        warnings.simplefilter("ignore", ResourceWarning)
        answer = await api.post(BATCH, token=payer.token, json=huge)
    assert answer.status == 413
    answer = await api.post(BATCH, json=batch(payer, [to(payee, 1)]))
    assert answer.status == 401
    assert await count_from(wallet_pool, payer.wallet_id) == 0


async def test_concurrent_batches_and_single_payments_keep_the_books(
    api: Api, make_user: MakeUser, wallet_pool: asyncpg.Pool
) -> None:
    people = [await make_user(balance=5_000) for _ in range(4)]

    async def batches(payer: Person, atomic: bool) -> None:
        others = [p for p in people if p is not payer]
        for round_ in range(6):
            items = [to(others[(round_ + n) % 3], 37 + n) for n in range(40)]
            mode = "atomic" if atomic else "independent"
            answer = await api.post(BATCH, token=payer.token, json=batch(payer, items, mode))
            assert answer.status in (200, 201, 409), answer.text[:300]

    async def singles(payer: Person) -> None:
        others = [p for p in people if p is not payer]
        for n in range(60):
            answer = await api.post(
                "/api/v1/transfers",
                token=payer.token,
                json=pay_body(payer, others[n % 3], 53),
            )
            assert answer.status in (201, 409), answer.text

    await asyncio.gather(
        *(batches(p, n % 2 == 0) for n, p in enumerate(people)), *(singles(p) for p in people)
    )
    balances = [await wallet_balance(api, p) for p in people]
    assert sum(balances) == 20_000 and min(balances) >= 0
    ids = await wallet_pool.fetch(
        "SELECT id, count(*) FROM transfers WHERE from_account = ANY($1::text[]) GROUP BY id "
        "HAVING count(*) > 1",
        [p.wallet_id for p in people],
    )
    assert ids == []
    assert await ledger_violations(wallet_pool) == []


def test_a_batch_crosses_the_cluster_codec_as_itself() -> None:
    codec = wallet_codec()
    transfer = NewTransfer(
        id="trf_1", kind="p2p", status="posted", from_account="wal_a", to_account="wal_b",
        amount=5, currency="EUR", memo=None, initiator_id="usr_1",
    )  # fmt: skip
    for value in (
        DebitMany((transfer, transfer), atomic=True),
        ManyOutcome((ItemOutcome(duplicate="trf_1"), ItemOutcome(error=InsufficientFunds("no")))),
        ManyOutcome(refused=InsufficientFunds("short", amount=5)),
    ):
        frame = codec.decode(codec.encode([codec.frame((0, 1, codec.name_of(value), value))]))
        decoded = codec.value(frame[0][2], frame[0][3])
        assert type(decoded) is type(value)
        assert repr(decoded) == repr(value)


async def test_batches_and_holds_count_against_spend_limits(
    api: Api, make_user: MakeUser, wallet_pool: asyncpg.Pool
) -> None:
    payer, payee = await make_user(balance=10_000), await make_user()
    limits = f"/api/v1/wallets/{payer.wallet_id}/limits"
    set_ = await api.request(
        "PUT", limits, token=payer.token, json={"daily": 1_000, "monthly": None}
    )
    assert set_.status == 200, set_.text
    over = await api.post(
        BATCH, token=payer.token, json=batch(payer, [to(payee, 600), to(payee, 401)])
    )
    assert over.status == 409 and over.error_code == "limit_exceeded", over.text
    each = await api.post(
        BATCH,
        token=payer.token,
        json=batch(payer, [to(payee, 600), to(payee, 401), to(payee, 300)], "independent"),
    )
    codes = [r.get("error", {}).get("code", r["status"]) for r in each.body["results"]]
    assert codes == ["applied", "limit_exceeded", "applied"], each.text
    hold = await api.post(
        "/api/v1/holds",
        token=payer.token,
        json={"from_wallet": payer.wallet_id, "to_wallet": payee.wallet_id, "amount": 101,
              "currency": payer.wallet["currency"]},
    )  # fmt: skip
    assert hold.status == 409 and hold.error_code == "limit_exceeded", hold.text
    assert await count_from(wallet_pool, payer.wallet_id) == 2
