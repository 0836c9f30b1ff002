"""Spend limits: the wallet's owner caps its outgoing payments per UTC day and month; the
wallet's actor refuses, exactly past the boundary, without a query per payment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from httpkit import Api, MakeUser, Person, pay_body

from transakt.actors.limits import SpendingGuard
from transakt.composition.node import open_node
from transakt.config import ResolvedServices, Settings
from transakt.errors import LimitExceeded
from transakt.services.wallets import TransferRequest
from transakt.storage.limits import set_limits
from transakt.storage.records import NewTransfer, Rejected


async def put_limits(api: Api, person: Person, daily: object, monthly: object) -> None:
    answer = await api.request(
        "PUT",
        f"/api/v1/wallets/{person.wallet_id}/limits",
        token=person.token,
        json={"daily": daily, "monthly": monthly},
    )
    assert answer.status == 200, answer.text


async def pay(api: Api, payer: Person, payee: Person, amount: int) -> tuple[int, dict[str, object]]:
    answer = await api.post(
        "/api/v1/transfers", token=payer.token, json=pay_body(payer, payee, amount)
    )
    return answer.status, answer.body


async def test_spending_up_to_the_daily_limit_passes_and_one_more_unit_is_refused(
    api: Api, make_user: MakeUser
) -> None:
    payer, payee = await make_user(balance=10_000), await make_user()
    await put_limits(api, payer, 1_000, None)

    assert (await pay(api, payer, payee, 600))[0] == 201
    assert (await pay(api, payer, payee, 400))[0] == 201  # exactly the limit
    status, body = await pay(api, payer, payee, 1)
    assert status == 409
    error = body["error"]
    assert isinstance(error, dict)
    assert error["code"] == "limit_exceeded"
    assert error["window"] == "daily"
    assert error["limit"] == 1_000 and error["remaining"] == 0
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    assert str(error["resets_at"]).startswith(tomorrow + "T00:00:00")

    limits = await api.get(f"/api/v1/wallets/{payer.wallet_id}/limits", token=payer.token)
    assert limits.status == 200
    assert limits.body["daily"] == 1_000 and limits.body["monthly"] is None
    assert limits.body["spent"] == {"daily": 1_000, "monthly": 1_000}
    assert limits.body["remaining"] == {"daily": 0, "monthly": None}
    # Refused payments moved nothing.
    wallet = await api.get(f"/api/v1/wallets/{payer.wallet_id}", token=payer.token)
    assert wallet.body["balance"] == 9_000


async def test_a_refused_payment_does_not_count_and_the_remainder_still_passes(
    api: Api, make_user: MakeUser
) -> None:
    payer, payee = await make_user(balance=10_000), await make_user()
    await put_limits(api, payer, 1_000, None)
    assert (await pay(api, payer, payee, 700))[0] == 201
    status, body = await pay(api, payer, payee, 301)
    assert status == 409 and body["error"]["remaining"] == 300  # type: ignore[index]
    # Insufficient funds is refused too, and does not count either.
    poor, other = await make_user(balance=100), await make_user()
    await put_limits(api, poor, 1_000, None)
    status, body = await pay(api, poor, other, 500)
    assert status == 409 and body["error"]["code"] == "insufficient_funds"  # type: ignore[index]
    assert (await pay(api, poor, other, 100))[0] == 201
    assert (await pay(api, payer, payee, 300))[0] == 201


async def test_daily_and_monthly_limits_are_separate_windows(api: Api, make_user: MakeUser) -> None:
    payer, payee = await make_user(balance=10_000), await make_user()
    await put_limits(api, payer, 1_000, 1_500)
    assert (await pay(api, payer, payee, 1_000))[0] == 201
    status, body = await pay(api, payer, payee, 1)
    assert status == 409 and body["error"]["window"] == "daily"  # type: ignore[index]

    # Without the daily cap the month still counts what today spent.
    await put_limits(api, payer, None, 1_500)
    assert (await pay(api, payer, payee, 500))[0] == 201
    status, body = await pay(api, payer, payee, 1)
    assert status == 409
    error = body["error"]
    assert isinstance(error, dict)
    assert error["window"] == "monthly" and error["limit"] == 1_500 and error["remaining"] == 0

    # Raising a limit takes effect at the next payment; removing both lifts every cap.
    await put_limits(api, payer, None, 1_501)
    assert (await pay(api, payer, payee, 1))[0] == 201
    await put_limits(api, payer, None, None)
    assert (await pay(api, payer, payee, 5_000))[0] == 201


async def test_a_zero_limit_stops_payments_and_other_kinds_of_money_are_not_limited(
    api: Api, make_user: MakeUser
) -> None:
    payer, payee = await make_user(balance=1_000), await make_user()
    await put_limits(api, payer, 0, None)
    status, body = await pay(api, payer, payee, 1)
    assert status == 409 and body["error"]["remaining"] == 0  # type: ignore[index]
    # The payee's incoming payments are not limited by the payer's caps, nor by their own.
    await put_limits(api, payee, 0, 0)
    assert (await pay(api, payee, payer, 1))[0] == 409
    await put_limits(api, payer, None, None)
    assert (await pay(api, payer, payee, 10))[0] == 201


async def test_only_the_owner_reads_and_sets_limits_and_bad_input_is_a_422(
    api: Api, make_user: MakeUser
) -> None:
    owner, stranger = await make_user(), await make_user()
    path = f"/api/v1/wallets/{owner.wallet_id}/limits"
    assert (await api.get(path, token=stranger.token)).status == 403
    refused = await api.request(
        "PUT", path, token=stranger.token, json={"daily": 1, "monthly": None}
    )
    assert refused.status == 403
    assert (await api.get(path)).status == 401
    assert (await api.get("/api/v1/wallets/wal_nope/limits", token=owner.token)).status == 404
    for body in (
        {"daily": 1.5, "monthly": None},
        {"daily": -1, "monthly": None},
        {"daily": "10", "monthly": None},
        {"daily": True, "monthly": None},
        {"daily": 10**16, "monthly": None},
        {"daily": 10},
        {"daily": 10, "monthly": None, "weekly": 5},
        [],
    ):
        answer = await api.request("PUT", path, token=owner.token, json=body)
        assert answer.status == 422, (body, answer.text)
        assert answer.error_code == "validation_error"
    fresh = await api.get(path, token=owner.token)
    assert fresh.status == 200
    assert fresh.body["daily"] is None and fresh.body["monthly"] is None


async def test_the_limit_survives_a_restart_the_new_actor_counts_what_was_spent(
    wallet_settings: Settings, services: ResolvedServices, make_user: MakeUser
) -> None:
    payer, payee = await make_user(balance=10_000), await make_user()
    request = TransferRequest(payer.wallet_id, payee.wallet_id, None, 700, "EUR", None)
    async with open_node(wallet_settings, services) as first:
        await first.limits.set(payer.user_id, payer.wallet_id, 1_000, 5_000)
        await first.service.transfer(payer.user_id, request, None)
    # A new node: new actors, which know nothing but what PostgreSQL holds.
    async with open_node(wallet_settings, services) as second:
        too_much = TransferRequest(payer.wallet_id, payee.wallet_id, None, 301, "EUR", None)
        with pytest.raises(LimitExceeded) as refused:
            await second.service.transfer(payer.user_id, too_much, None)
        assert refused.value.details["remaining"] == 300
        exactly = TransferRequest(payer.wallet_id, payee.wallet_id, None, 300, "EUR", None)
        await second.service.transfer(payer.user_id, exactly, None)
        # Passivated and woken again (a crash-restart builds a fresh actor the same way).
        await second.system.shutdown()
    async with open_node(wallet_settings, services) as third:
        one = TransferRequest(payer.wallet_id, payee.wallet_id, None, 1, "EUR", None)
        with pytest.raises(LimitExceeded):
            await third.service.transfer(payer.user_id, one, None)


def _payment(wallet: str, to: str, amount: int, number: int) -> NewTransfer:
    return NewTransfer(
        id=f"trf_limits_unit_{wallet}_{number}",
        kind="p2p",
        status="posted",
        from_account=wallet,
        to_account=to,
        amount=amount,
        currency="EUR",
        memo=None,
        initiator_id=None,
    )


async def test_windows_roll_over_at_utc_midnight_and_at_the_first_of_the_month(
    wallet_pool: asyncpg.Pool, make_user: MakeUser
) -> None:
    """The guard alone, on a clock the test moves (a day no payment in the database is on)."""
    payer, payee = await make_user(), await make_user()
    await set_limits(wallet_pool, payer.wallet_id, 100, 150)
    now = datetime(2031, 1, 30, 23, 59, 59, tzinfo=UTC)
    guard = SpendingGuard(payer.wallet_id, wallet_pool, clock=lambda: now)

    async def judge(amount: int, number: int) -> NewTransfer | Rejected:
        transfer = _payment(payer.wallet_id, payee.wallet_id, amount, number)
        judged = await guard.judge(transfer)
        if not isinstance(judged, Rejected):
            guard.count(judged)
        return judged

    assert not isinstance(await judge(100, 1), Rejected)
    refused = await judge(1, 2)
    assert isinstance(refused, Rejected) and refused.error.details["window"] == "daily"
    now = datetime(2031, 1, 31, 0, 0, 0, tzinfo=UTC)  # a new day, the same month
    assert not isinstance(await judge(50, 3), Rejected)
    refused = await judge(1, 4)
    assert isinstance(refused, Rejected) and refused.error.details["window"] == "monthly"
    assert refused.error.details["resets_at"] == "2031-02-01T00:00:00.000000Z"
    now = datetime(2031, 2, 1, 0, 0, 0, tzinfo=UTC)  # a new month
    assert not isinstance(await judge(100, 5), Rejected)
    assert guard.spent_today == 100 and guard.spent_this_month == 100


async def test_payments_that_apply_together_are_refused_by_their_sum(
    wallet_pool: asyncpg.Pool, make_user: MakeUser
) -> None:
    """For an atomic batch: the guard's refuse_total judges the sum, at the boundary too."""
    payer, payee = await make_user(), await make_user()
    await set_limits(wallet_pool, payer.wallet_id, 100, None)
    now = datetime(2031, 3, 3, 12, 0, 0, tzinfo=UTC)
    guard = SpendingGuard(payer.wallet_id, wallet_pool, clock=lambda: now)
    exactly = [_payment(payer.wallet_id, payee.wallet_id, 50, n) for n in (1, 2)]
    assert await guard.refuse_total(exactly) is None
    one_more = [*exactly, _payment(payer.wallet_id, payee.wallet_id, 1, 3)]
    refused = await guard.refuse_total(one_more)
    assert isinstance(refused, Rejected) and isinstance(refused.error, LimitExceeded)
    assert refused.error.details["remaining"] == 100
    # Counted, then released as not applied: the whole limit is there again.
    for transfer in exactly:
        guard.count(transfer)
    assert guard.spent_today == 100
    guard.release(exactly[0].id, applied=False)
    guard.release(exactly[1].id, applied=True)
    assert guard.spent_today == 50
