"""Outage modes: named sets of fault knobs, and the `refusing` mode's declined transfers."""

from __future__ import annotations

import pytest

from transakt.bankapi import Faults
from transakt.bankapi.modes import MODES, SLOW_LATENCY_MS, faults_for, mode_of
from transakt.config import Settings
from transakt.errors import ValidationFailed
from transakt.gateway import BankClient
from transakt.sandbox import create_app
from transakt.sandbox.views import FAULTS_KEY

from .conftest import SECRET, MakeBank


@pytest.mark.parametrize("mode", MODES)
def test_each_mode_reads_back_as_itself_and_keeps_the_seed(mode: str) -> None:
    faults = faults_for(mode, Faults(latency_ms=70, failure_rate=0.3, seed=9))  # type: ignore[arg-type]
    assert mode_of(faults) == mode
    assert faults.seed == 9 and faults.failure_rate == 0.0


def test_what_each_mode_sets() -> None:
    assert faults_for("normal") == Faults()
    assert faults_for("slow") == Faults(latency_ms=SLOW_LATENCY_MS)
    assert faults_for("down") == Faults(refuse_all=True)
    assert faults_for("refusing") == Faults(decline_all=True)
    # Knobs set by hand show as the nearest mode.
    assert mode_of(Faults(failure_rate=1.0)) == "down"
    assert mode_of(Faults(failure_rate=0.5)) == "normal"


def test_decline_all_is_validated() -> None:
    with pytest.raises(ValidationFailed):
        Faults(decline_all="yes")  # type: ignore[arg-type]
    with pytest.raises(ValidationFailed):
        Faults().updated({"decline_all": 1})
    assert Faults().updated({"decline_all": True}).to_json()["decline_all"] is True


async def test_a_refusing_bank_declines_new_transfers_and_replays_stored_ones(
    bank_client: BankClient,
) -> None:
    account = (await bank_client.create_account("Ada", "EUR", 1_000)).account
    before = await bank_client.transfer("t-before", account, "debit", 100, "EUR")
    assert before.completed
    assert (await bank_client.set_faults(decline_all=True)).decline_all
    declined = await bank_client.transfer("t-declined", account, "debit", 100, "EUR")
    assert (declined.status, declined.reason) == ("rejected", "declined")
    # A replay answers what was stored, whatever the mode now.
    assert (await bank_client.transfer("t-before", account, "debit", 100, "EUR")).completed
    # Reads and verifications still answer: the bank is up, it only says no to money.
    assert (await bank_client.get_account(account)) is not None
    await bank_client.set_faults(decline_all=False)
    again = await bank_client.transfer("t-declined", account, "debit", 100, "EUR")
    assert (again.status, again.reason) == ("rejected", "declined")  # applied once, as stored
    account_now = await bank_client.get_account(account)
    assert account_now is not None and account_now.balance == 900


@pytest.mark.parametrize("mode", MODES)
def test_the_bank_starts_in_the_mode_of_its_settings(mode: str, bank_settings: Settings) -> None:
    settings = bank_settings.with_values(bank_mode=mode, bank_fault_latency_ms=5)
    app = create_app(settings.bank, "postgresql://unused")
    faults = app[FAULTS_KEY].faults
    if mode == "normal":  # normal leaves the fault knobs as they are set
        assert faults == Faults(latency_ms=5)
    else:  # any other mode replaces them
        assert faults == faults_for(mode)  # type: ignore[arg-type]


async def test_a_bank_started_down_answers_503(make_bank: MakeBank) -> None:
    url = await make_bank(faults_for("down"))
    async with BankClient(url, SECRET, timeout=5.0) as client:
        assert mode_of(await client.get_faults()) == "down"
