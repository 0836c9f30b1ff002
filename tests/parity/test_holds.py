"""Holds: reserve now, post all or part later, void, or let them expire, exactly once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from httpkit import Api, MakeUser, Person, wallet_balance
from waits import wait_until

from transakt.composition.node import open_node
from transakt.config import ResolvedServices, Settings
from transakt.storage.audit import ledger_violations

HOLDS = "/api/v1/holds"


def hold_body(payer: Person, payee: Person, amount: int, **extra: Any) -> dict[str, Any]:
    return {
        "from_wallet": payer.wallet_id,
        "to_wallet": payee.wallet_id,
        "amount": amount,
        "currency": payer.wallet["currency"],
        **extra,
    }


async def wallet(api: Api, person: Person) -> dict[str, Any]:
    answer = await api.get(f"/api/v1/wallets/{person.wallet_id}", token=person.token)
    assert answer.status == 200
    return dict(answer.body)


async def test_a_hold_reserves_and_posting_moves_the_money(api: Api, make_user: MakeUser) -> None:
    payer, payee = await make_user(balance=1_000), await make_user()
    held = await api.post(
        HOLDS, token=payer.token, json=hold_body(payer, payee, 400, metadata={"order": "A-17"})
    )
    assert held.status == 201, held.text
    hold = held.body
    assert (hold["status"], hold["kind"], hold["metadata"]) == ("pending", "p2p", {"order": "A-17"})
    assert hold["id"].startswith("hld_") and "expires_at" in hold
    mine = await wallet(api, payer)
    assert (mine["balance"], mine["available"], mine["pending_out"]) == (1_000, 600, 400)
    assert (await wallet(api, payee))["pending_in"] == 400
    seen = await api.get(f"{HOLDS}/{hold['id']}", token=payee.token)
    assert seen.status == 200 and seen.body["metadata"] == {"order": "A-17"}
    posted = await api.post(f"{HOLDS}/{hold['id']}/post", token=payee.token)
    assert posted.status == 200 and posted.body["status"] == "posted", posted.text
    assert (await wallet_balance(api, payer), await wallet_balance(api, payee)) == (600, 400)
    again = await api.post(f"{HOLDS}/{hold['id']}/void", token=payer.token)
    assert again.status == 409 and again.error_code == "hold_not_pending"


async def test_posting_part_of_a_hold_releases_the_rest(
    api: Api, make_user: MakeUser, wallet_pool: asyncpg.Pool
) -> None:
    payer, payee = await make_user(balance=1_000), await make_user()
    hold = (await api.post(HOLDS, token=payer.token, json=hold_body(payer, payee, 400))).body
    too_much = await api.post(f"{HOLDS}/{hold['id']}/post", token=payee.token, json={"amount": 401})
    assert too_much.status == 422
    part = await api.post(f"{HOLDS}/{hold['id']}/post", token=payee.token, json={"amount": 150})
    assert part.status == 200, part.text
    assert (part.body["id"], part.body["amount"]) == (f"{hold['id']}:post", 150)
    after = await api.get(f"{HOLDS}/{hold['id']}", token=payer.token)
    assert (after.body["status"], after.body["reason"]) == ("voided", "posted 150 of 400")
    mine = await wallet(api, payer)
    assert (mine["balance"], mine["available"], mine["pending_out"]) == (850, 850, 0)
    assert (await wallet(api, payee))["balance"] == 150
    second = await api.post(f"{HOLDS}/{hold['id']}/post", token=payee.token, json={"amount": 10})
    assert second.status == 409 and second.error_code == "hold_not_pending"
    assert await ledger_violations(wallet_pool) == []


async def test_a_voided_hold_gives_the_money_back_and_strangers_see_nothing(
    api: Api, make_user: MakeUser
) -> None:
    payer, payee, stranger = await make_user(balance=500), await make_user(), await make_user()
    hold = (await api.post(HOLDS, token=payer.token, json=hold_body(payer, payee, 500))).body
    short = await api.post("/api/v1/transfers", token=payer.token, json={
        "from_wallet": payer.wallet_id, "to_wallet": payee.wallet_id, "amount": 1,
        "currency": payer.wallet["currency"]})  # fmt: skip
    assert short.status == 409 and short.error_code == "insufficient_funds"
    for path in (f"{HOLDS}/{hold['id']}", f"{HOLDS}/{hold['id']}/post"):
        answer = await (api.get if path.endswith(hold["id"]) else api.post)(
            path, token=stranger.token
        )
        assert answer.status == 404
    voided = await api.post(f"{HOLDS}/{hold['id']}/void", token=payer.token)
    assert voided.status == 200 and voided.body["status"] == "voided"
    assert (await wallet(api, payer))["available"] == 500
    assert (await api.get(f"{HOLDS}/trf_{uuid.uuid4().hex}", token=payer.token)).status == 404


async def test_holds_refuse_bad_input_and_more_than_is_available(
    api: Api, make_user: MakeUser
) -> None:
    payer, payee = await make_user(balance=100), await make_user()
    for changes in ({"expires_in": 0}, {"expires_in": 31 * 86400}, {"amount": 0},
                    {"metadata": {"bad key": 1}}, {"metadata": [1]},
                    {"metadata": {f"k{n}": n for n in range(21)}}):  # fmt: skip
        answer = await api.post(
            HOLDS, token=payer.token, json=hold_body(payer, payee, 10) | changes
        )
        assert answer.status == 422, (changes, answer.text)
    over = await api.post(HOLDS, token=payer.token, json=hold_body(payer, payee, 101))
    assert over.status == 409 and over.error_code == "insufficient_funds"


async def test_a_hold_expires_once_even_when_its_node_is_gone(
    api: Api,
    make_user: MakeUser,
    wallet_pool: asyncpg.Pool,
    wallet_settings: Settings,
    services: ResolvedServices,
) -> None:
    payer, payee = await make_user(balance=300), await make_user()
    # A node of its own makes the hold and stops before it expires: the expiry is not in its
    # memory, so the nodes that remain (two sweepers here) void it, once.
    settings = wallet_settings.with_values(ledger_hold_sweep_seconds=0.2)
    async with open_node(settings, services) as creator:
        from transakt.services.holds import HoldRequest
        from transakt.services.wallets import TransferRequest

        made = await creator.holds.create(
            payer.user_id,
            HoldRequest(
                TransferRequest(payer.wallet_id, payee.wallet_id, None, 300, "EUR", None),
                expires_in=1,
            ),
            None,
        )
    hold_id = made.id  # type: ignore[union-attr]
    async with open_node(settings, services) as second:
        await wait_until(_is(wallet_pool, hold_id, "voided"), "the hold voided at expiry")
        assert second.hold_expiry.tasks is not None
    row = await wallet_pool.fetchrow("SELECT status, reason FROM transfers WHERE id = $1", hold_id)
    assert (row["status"], row["reason"]) == ("voided", "expired")
    events = await wallet_pool.fetchval(
        "SELECT count(*) FROM outbox WHERE event_id = $1", f"{hold_id}:voided"
    )
    assert events == 1
    assert (
        await wallet_pool.fetchval(
            "SELECT count(*) FROM hold_expiries WHERE transfer_id = $1", hold_id
        )
        == 0
    )
    assert (await wallet(api, payer))["available"] == 300
    assert await ledger_violations(wallet_pool) == []


async def _status(pool: asyncpg.Pool, hold_id: str) -> str:
    value: str = await pool.fetchval("SELECT status FROM transfers WHERE id = $1", hold_id)
    return value


def _is(pool: asyncpg.Pool, hold_id: str, status: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await _status(pool, hold_id) == status

    return check


def _settled(pool: asyncpg.Pool, hold_id: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await _status(pool, hold_id) != "pending"

    return check


async def test_posting_and_expiry_racing_settle_a_hold_once(
    api: Api, make_user: MakeUser, wallet_pool: asyncpg.Pool
) -> None:
    for _ in range(5):
        payer, payee = await make_user(balance=200), await make_user()
        hold = (
            await api.post(
                HOLDS, token=payer.token, json=hold_body(payer, payee, 200, expires_in=1)
            )
        ).body
        await asyncio.sleep(0.9)
        answers = await asyncio.gather(
            api.post(f"{HOLDS}/{hold['id']}/post", token=payee.token, json={"amount": 120}),
            api.post(f"{HOLDS}/{hold['id']}/post", token=payee.token),
            api.post(f"{HOLDS}/{hold['id']}/void", token=payer.token),
        )
        assert sum(answer.status == 200 for answer in answers) <= 1, [a.text for a in answers]
        await wait_until(_settled(wallet_pool, hold["id"]), "the hold settled")
        total = await wallet_balance(api, payer) + await wallet_balance(api, payee)
        assert total == 200
        assert (await wallet(api, payer))["pending_out"] == 0
    assert await ledger_violations(wallet_pool) == []


async def test_history_filters_on_metadata_and_shows_it(api: Api, make_user: MakeUser) -> None:
    payer, payee = await make_user(balance=1_000), await make_user()
    for order, amount in (("A-1", 10), ("A-2", 20), ("17", 30)):
        body = {
            "from_wallet": payer.wallet_id, "to_wallet": payee.wallet_id, "amount": amount,
            "currency": payer.wallet["currency"], "metadata": {"order": order, "n": amount},
        }  # fmt: skip
        assert (await api.post("/api/v1/transfers", token=payer.token, json=body)).status == 201
    path = f"/api/v1/wallets/{payer.wallet_id}/transactions"
    page = await api.get(path, token=payer.token, params={"metadata.order": "A-2"})
    assert page.status == 200, page.text
    assert [(i["amount"], i["metadata"]) for i in page.body["items"]] == [
        (20, {"order": "A-2", "n": 20})
    ]
    both = await api.get(path, token=payer.token, params={"metadata.n": "30"})
    assert [i["amount"] for i in both.body["items"]] == [30]
    text = await api.get(path, token=payer.token, params={"metadata.order": "17"})
    assert [i["amount"] for i in text.body["items"]] == [30]
    bad = await api.get(path, token=payer.token, params={"metadata.bad key": "1"})
    assert bad.status == 422


async def test_a_released_hold_no_longer_counts_against_the_limits(
    api: Api, make_user: MakeUser
) -> None:
    payer, payee = await make_user(balance=5_000), await make_user()
    limits = f"/api/v1/wallets/{payer.wallet_id}/limits"
    assert (
        await api.request("PUT", limits, token=payer.token, json={"daily": 500, "monthly": None})
    ).status == 200
    hold = (await api.post(HOLDS, token=payer.token, json=hold_body(payer, payee, 400))).body
    over = await api.post(HOLDS, token=payer.token, json=hold_body(payer, payee, 101))
    assert over.status == 409 and over.error_code == "limit_exceeded"
    part = await api.post(f"{HOLDS}/{hold['id']}/post", token=payee.token, json={"amount": 100})
    assert part.status == 200, part.text
    again = await api.post(HOLDS, token=payer.token, json=hold_body(payer, payee, 400))
    assert again.status == 201, again.text  # 100 posted + 400 held: exactly the limit
    assert (await api.post(f"{HOLDS}/{again.body['id']}/void", token=payer.token)).status == 200
    last = await api.post(HOLDS, token=payer.token, json=hold_body(payer, payee, 400))
    assert last.status == 201, last.text
