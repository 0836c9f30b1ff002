"""Reconciliation finds what differs: each rule on its own, and the command's exit code."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from httpkit import BANK_SECRET

from gateway.kit import DEPOSITS, Bank, Nodes, wait_for
from transakt.bankapi.models import BankTransferResult
from transakt.gateway.reconcile import compare, reconcile
from transakt.models import TransferStatus
from transakt.storage.bank_requests import BankRequest, RecordedBankTransfer

_DEPOSIT = BankRequest("trf_1", "deposit", "DE01", 500, "EUR")


def _recorded(status: TransferStatus, age: float = 600.0) -> RecordedBankTransfer:
    return RecordedBankTransfer(_DEPOSIT, status, None, datetime.now(UTC), age)


def _at_bank(status: str = "completed", **changes: object) -> BankTransferResult:
    values: dict[str, object] = {
        "id": "trf_1",
        "status": status,
        "account": "DE01",
        "direction": "debit",
        "amount": 500,
        "currency": "EUR",
        "reason": None if status == "completed" else "insufficient_funds",
    }
    values.update(changes)
    return BankTransferResult(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "found", "problem"),
    [
        ("posted", _at_bank(), None),
        ("voided", _at_bank("rejected"), None),
        ("voided", None, None),
        ("posted", None, "posted in the wallet but not completed by the bank"),
        ("posted", _at_bank("rejected"), "posted in the wallet but not completed by the bank"),
        ("voided", _at_bank(), "voided in the wallet but completed by the bank"),
        ("posted", _at_bank(amount=501), "account, direction, amount or currency differ"),
        ("posted", _at_bank(direction="credit"), "account, direction, amount or currency differ"),
        ("posted", _at_bank(account="DE02"), "account, direction, amount or currency differ"),
        ("pending", None, "pending for 600s and unknown to the bank"),
        ("pending", _at_bank(), "the bank answered but the wallet is still pending"),
    ],
)
def test_each_rule(
    status: TransferStatus, found: BankTransferResult | None, problem: str | None
) -> None:
    assert compare(_recorded(status), found, grace=60.0) == (problem, False)


def test_a_young_pending_transfer_is_in_flight() -> None:
    assert compare(_recorded("pending", age=5.0), None, grace=60.0) == (None, True)


@pytest.fixture
async def scratch_database_url(database_url: str) -> AsyncIterator[str]:
    """A wallet database for one test, whose differences must not reach the other tests."""
    name = f"transakt_scratch_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(database_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(database_url)._replace(path=f"/{name}"))
    finally:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
        )
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.close()


async def test_a_bank_transfer_unknown_to_the_wallet_is_a_difference(
    bank: Bank, nodes: Nodes, scratch_database_url: str, tmp_path: Path
) -> None:
    nodes.database_url = scratch_database_url
    wallet = await nodes.open(bank)
    person = await wallet.signup(bank, balance=1_000)
    deposit = await wallet.move(DEPOSITS, person, 400)
    await wait_for(lambda: wallet.settled(deposit.body["id"]), "the deposit to settle")
    clean = await reconcile(wallet.settings, scratch_database_url, grace_seconds=0)
    assert clean.ok, clean.lines()
    assert (clean.checked, clean.bank_transfers) == (1, 1)

    # Money the bank moved on the user's account without the wallet asking.
    await bank.client.transfer("trf_stray", person.bank_account, "debit", 50, "EUR")
    report = await reconcile(wallet.settings, scratch_database_url, grace_seconds=0)
    assert not report.ok
    [difference] = report.differences
    assert difference.transfer_id == "trf_stray"
    assert difference.problem == "the bank has a transfer the wallet does not know"

    env = {key: value for key, value in os.environ.items() if not key.startswith("TRANSAKT_")}
    env |= {
        "TRANSAKT_DATABASE_URL": scratch_database_url,
        "TRANSAKT_BANK_URL": bank.url,
        "TRANSAKT_BANK_SERVICE_SECRET": BANK_SECRET,
    }
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "transakt", "reconcile"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "difference: trf_stray: the bank has a transfer the wallet does not know" in (
        result.stdout
    )
    await wallet.close()
