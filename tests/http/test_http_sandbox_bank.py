"""Play with an outage: GET|PUT /api/v1/sandbox/bank switches the sandbox bank's mode (dev only).

Against the session's real sandbox bank and wallet node: a deposit made while the bank is down
stays pending (buffered by the gateway) and posts once the bank is back to normal; with the bank
refusing, it is voided with the bank's reason.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from httpkit import Api, MakeUser, Person
from waits import wait_until

from transakt.bankapi.modes import SLOW_LATENCY_MS
from transakt.config import ResolvedServices, Settings
from transakt.gateway import BankClient
from transakt.http import create_app
from transakt.services.sandbox import SWITCH_LIMIT

SANDBOX = "/api/v1/sandbox/bank"
# The breaker opens, then lets a probe through after its reset time (5 s, doubling with each
# failed probe up to 60 s), and the sweep re-offers what is pending: a deposit posts within
# seconds of the bank's return, a minute at worst.
SETTLE_SECONDS = 75.0


@pytest.fixture
async def normal_afterwards(bank_client: BankClient) -> AsyncIterator[None]:
    """Whatever a test does to the session's sandbox bank, it is normal again afterwards."""
    yield
    await bank_client.set_faults(
        latency_ms=0, failure_rate=0.0, refuse_all=False, decline_all=False
    )


async def _deposit(api: Api, person: Person, amount: int) -> dict[str, Any]:
    answer = await api.post(
        "/api/v1/deposits",
        token=person.token,
        json={"wallet": person.wallet_id, "amount": amount, "currency": "EUR"},
    )
    assert answer.status == 202, answer.text
    return dict(answer.body)


async def _transfer(api: Api, person: Person, transfer_id: str) -> dict[str, Any]:
    answer = await api.get(f"/api/v1/transfers/{transfer_id}", token=person.token)
    assert answer.status == 200, answer.text
    return dict(answer.body)


@pytest.mark.timeout(180)
async def test_a_deposit_waits_while_the_bank_is_down_and_posts_once_it_is_back(
    api: Api, make_user: MakeUser, bank_client: BankClient, normal_afterwards: None
) -> None:
    person = await make_user(bank_balance=10_000)
    down = await api.request("PUT", SANDBOX, token=person.token, json={"mode": "down"})
    assert down.status == 200, down.text
    assert down.body == {"mode": "down", "latency_ms": 0}
    assert (await bank_client.get_faults()).refuse_all  # through the bank's own admin API
    assert (await api.get(SANDBOX, token=person.token)).body == {"mode": "down", "latency_ms": 0}

    deposit = await _deposit(api, person, 2_500)
    assert deposit["status"] == "pending"

    async def breaker_open() -> bool:
        ready = await api.get("/readyz")
        return bool(ready.body["checks"]["bank"]["breaker"] == "open")

    # The gateway sees the bank down (its breaker opens); the deposit waits, pending, and the
    # wallet is unchanged.
    await wait_until(breaker_open, "the gateway's breaker to open", 20.0)
    assert (await _transfer(api, person, deposit["id"]))["status"] == "pending"
    wallet = await api.get(f"/api/v1/wallets/{person.wallet_id}", token=person.token)
    assert wallet.body["balance"] == 0

    normal = await api.request("PUT", SANDBOX, token=person.token, json={"mode": "normal"})
    assert normal.body == {"mode": "normal", "latency_ms": 0}

    async def posted() -> bool:
        return (await _transfer(api, person, deposit["id"]))["status"] == "posted"

    await wait_until(posted, "the buffered deposit to post", SETTLE_SECONDS)
    wallet = await api.get(f"/api/v1/wallets/{person.wallet_id}", token=person.token)
    assert wallet.body["balance"] == 2_500
    debits = [t for t in await bank_client.list_transfers(person.bank_account) if t.amount == 2_500]
    assert [(t.direction, t.status) for t in debits] == [("debit", "completed")]  # exactly once


async def test_a_refusing_bank_voids_deposits_with_its_reason(
    api: Api, make_user: MakeUser, normal_afterwards: None
) -> None:
    person = await make_user(bank_balance=10_000)
    refusing = await api.request("PUT", SANDBOX, token=person.token, json={"mode": "refusing"})
    assert refusing.body == {"mode": "refusing", "latency_ms": 0}
    deposit = await _deposit(api, person, 700)

    async def voided() -> bool:
        return (await _transfer(api, person, deposit["id"]))["status"] == "voided"

    await wait_until(voided, "the declined deposit to be voided", SETTLE_SECONDS)
    wallet = await api.get(f"/api/v1/wallets/{person.wallet_id}", token=person.token)
    assert wallet.body["balance"] == 0


async def test_slow_mode_delays_every_call_and_still_posts(
    api: Api, make_user: MakeUser, bank_client: BankClient, normal_afterwards: None
) -> None:
    person = await make_user(bank_balance=10_000)
    slow = await api.request("PUT", SANDBOX, token=person.token, json={"mode": "slow"})
    assert slow.body == {"mode": "slow", "latency_ms": SLOW_LATENCY_MS}
    custom = await api.request(
        "PUT", SANDBOX, token=person.token, json={"mode": "slow", "latency_ms": 300}
    )
    assert custom.body == {"mode": "slow", "latency_ms": 300}
    assert (await bank_client.get_faults()).latency_ms == 300
    # A GET's answer sent back with another mode is fine: only slow delays.
    echoed = await api.request(
        "PUT", SANDBOX, token=person.token, json={"mode": "normal", "latency_ms": 300}
    )
    assert echoed.body == {"mode": "normal", "latency_ms": 0}
    default = await api.request(
        "PUT", SANDBOX, token=person.token, json={"mode": "slow", "latency_ms": 0}
    )
    assert default.body == {"mode": "slow", "latency_ms": SLOW_LATENCY_MS}
    await api.request("PUT", SANDBOX, token=person.token, json={"mode": "slow", "latency_ms": 300})
    deposit = await _deposit(api, person, 100)
    assert deposit["status"] == "pending"

    async def posted() -> bool:
        return (await _transfer(api, person, deposit["id"]))["status"] == "posted"

    await wait_until(posted, "the slow deposit to post", SETTLE_SECONDS)


async def test_signed_in_users_only(api: Api) -> None:
    for method in ("GET", "PUT"):
        answer = await api.request(method, SANDBOX, json={"mode": "down"})
        assert (answer.status, answer.error_code) == (401, "unauthorized"), method


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"mode": "broken"},
        {"mode": 1},
        {"mode": "down", "extra": True},
        {"mode": "slow", "latency_ms": -1},
        {"mode": "slow", "latency_ms": "1500"},
        {"mode": "down", "latency_ms": 1.5},
        {"mode": "slow", "latency_ms": 10**9},
        {"mode": "slow", "latency_ms": True},
    ],
)
async def test_a_bad_body_is_a_422_naming_the_field(
    api: Api, make_user: MakeUser, body: dict[str, Any]
) -> None:
    person = await make_user(linked=False, email_verified=False)
    answer = await api.request("PUT", SANDBOX, token=person.token, json=body)
    assert (answer.status, answer.error_code) == (422, "validation_error"), answer.text
    assert answer.body["error"]["fields"]


async def test_not_json_is_a_422(api: Api, make_user: MakeUser) -> None:
    person = await make_user(linked=False, email_verified=False)
    answer = await api.request(
        "PUT", SANDBOX, token=person.token, data="down", headers={"Content-Type": "text/plain"}
    )
    assert answer.status == 422, answer.text


async def test_switching_is_throttled_per_user(
    api: Api, make_user: MakeUser, normal_afterwards: None
) -> None:
    allowed = int(SWITCH_LIMIT.split("/")[0])
    person = await make_user(linked=False, email_verified=False)
    for _ in range(allowed):
        answer = await api.request("PUT", SANDBOX, token=person.token, json={"mode": "normal"})
        assert answer.status == 200, answer.text
    refused = await api.request("PUT", SANDBOX, token=person.token, json={"mode": "down"})
    assert (refused.status, refused.error_code) == (429, "rate_limited")
    assert int(refused.headers["Retry-After"]) >= 1
    # Reading is not counted, and another user may still switch.
    assert (await api.get(SANDBOX, token=person.token)).body["mode"] == "normal"
    other = await make_user(linked=False, email_verified=False)
    answer = await api.request("PUT", SANDBOX, token=other.token, json={"mode": "normal"})
    assert answer.status == 200


async def test_the_path_does_not_exist_outside_dev_mode(
    wallet_settings: Settings, services: ResolvedServices, make_user: MakeUser
) -> None:
    person = await make_user(linked=False, email_verified=False)
    prod = wallet_settings.with_values(mode="prod", jwt_secret=wallet_settings.jwt.secret)
    assert prod.mode == "prod"
    app = create_app(prod, services)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        prod_api = Api(client)
        for method in ("GET", "PUT"):
            for token in (person.token, None):
                answer = await prod_api.request(method, SANDBOX, token=token, json={"mode": "down"})
                assert (answer.status, answer.error_code) == (404, "not_found"), (method, token)
        document = await prod_api.get("/api/v1/openapi.json")
        assert "dev mode only" in document.text.lower()
