"""Fault knobs: a bank that is down, slow, or failing a seeded share of calls."""

from __future__ import annotations

import random

import pytest

from transakt.bankapi import Faults
from transakt.errors import BankUnavailable
from transakt.gateway import BankClient

from .conftest import SECRET, MakeBank, Raw, RunningBank


async def test_refuse_all_makes_the_client_raise_bank_unavailable(
    bank_client: BankClient, raw: Raw
) -> None:
    account = (await bank_client.create_account("Ada", "EUR", 100)).account
    assert await bank_client.set_faults(refuse_all=True) == Faults(refuse_all=True, seed=1)
    with pytest.raises(BankUnavailable):
        await bank_client.verify_user(account)
    with pytest.raises(BankUnavailable):
        await bank_client.transfer("t-down", account, "debit", 1, "EUR")
    # Down means down for everyone, even without a token; health and admin still answer.
    status, body = await raw("GET", f"/api/v1/accounts/{account}", token=None)
    assert (status, body["error"]["code"]) == (503, "bank_unavailable")
    assert (await raw("GET", "/healthz", token=None))[0] == 200
    await bank_client.set_faults(refuse_all=False)
    assert await bank_client.get_transfer("t-down") is None  # nothing was applied
    assert await bank_client.verify_user(account) is not None


async def test_latency_beyond_the_client_timeout_is_bank_unavailable(
    bank_client: BankClient, bank: RunningBank
) -> None:
    account = (await bank_client.create_account("Ada", "EUR", 100)).account
    await bank_client.set_faults(latency_ms=400)
    async with BankClient(bank.url, SECRET, timeout=0.1) as impatient:
        with pytest.raises(BankUnavailable):
            await impatient.get_account(account)
    # A patient caller gets the (slow) answer.
    async with BankClient(bank.url, SECRET, timeout=5.0) as patient:
        assert await patient.get_account(account) is not None


async def test_failure_rate_with_a_seed_repeats(bank_client: BankClient) -> None:
    account = (await bank_client.create_account("Ada", "EUR", 100)).account

    async def outcomes() -> list[bool]:
        results = []
        for _ in range(40):
            try:
                await bank_client.get_account(account)
                results.append(True)
            except BankUnavailable:
                results.append(False)
        return results

    await bank_client.set_faults(failure_rate=0.5, seed=42)
    first = await outcomes()
    await bank_client.set_faults(seed=42)
    second = await outcomes()
    draws = random.Random(42)
    expected = [draws.random() >= 0.5 for _ in range(40)]
    assert first == second == expected
    assert 5 < sum(first) < 35


async def test_faults_can_be_read_back(raw: Raw) -> None:
    status, body = await raw(
        "PUT", "/admin/faults", json={"latency_ms": 5, "failure_rate": 0.25, "seed": 3}
    )
    assert status == 200
    assert body == {
        "latency_ms": 5,
        "failure_rate": 0.25,
        "refuse_all": False,
        "seed": 3,
        "decline_all": False,
    }
    assert await raw("GET", "/admin/faults") == (200, body)


@pytest.mark.parametrize(
    "body",
    [
        {"latency_ms": -1},
        {"latency_ms": 1.5},
        {"failure_rate": 2},
        {"failure_rate": "0.5"},
        {"refuse_all": "yes"},
        {"seed": 1.5},
        {"chaos": True},
        [],
    ],
)
async def test_bad_fault_settings_are_422(raw: Raw, body: object) -> None:
    status, answer = await raw("PUT", "/admin/faults", json=body)
    assert (status, answer["error"]["code"]) == (422, "validation_error")
    assert (await raw("GET", "/admin/faults"))[1]["latency_ms"] == 0


async def test_faults_given_at_start(make_bank: MakeBank) -> None:
    url = await make_bank(Faults(refuse_all=True))
    async with BankClient(url, SECRET, timeout=5.0) as client:
        with pytest.raises(BankUnavailable):
            await client.verify_user("DE00000000000000000000")
        assert await client.get_faults() == Faults(refuse_all=True)
