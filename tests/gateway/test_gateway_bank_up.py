"""Deposits, withdrawals and signups with the bank up: the happy paths and every refusal."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

from httpkit import BANK_SECRET

from gateway.kit import DEPOSITS, WITHDRAWALS, Bank, Nodes, assert_reconciled, wait_for


async def test_deposit_is_accepted_pending_then_posted(bank: Bank, nodes: Nodes) -> None:
    wallet = await nodes.open(bank)
    person = await wallet.signup(bank, balance=10_000)

    answer = await wallet.move(DEPOSITS, person, 2_500)
    assert answer.status == 202, answer.text
    transfer = answer.body
    assert (transfer["kind"], transfer["status"]) == ("deposit", "pending")
    assert transfer["to_wallet"] == person.wallet_id
    assert (transfer["amount"], transfer["currency"]) == (2_500, "EUR")

    await wait_for(lambda: wallet.settled(transfer["id"]), "the deposit to settle")
    shown = await wallet.api.get(f"/api/v1/transfers/{transfer['id']}", token=person.token)
    assert shown.body["status"] == "posted"
    assert shown.body["posted_at"].endswith("Z")
    after = await wallet.wallet(person)
    assert (after["balance"], after["available"], after["pending_in"]) == (2_500, 2_500, 0)
    assert await bank.balance(person.bank_account) == person.bank_start - 2_500
    assert await bank.transfer_ids(person.bank_account) == [transfer["id"]]
    history = await wallet.api.get(
        f"/api/v1/wallets/{person.wallet_id}/transactions", token=person.token
    )
    assert [(item["kind"], item["status"]) for item in history.body["items"]] == [
        ("deposit", "posted")
    ]
    await assert_reconciled(wallet)


async def test_withdrawal_holds_then_posts(bank: Bank, nodes: Nodes) -> None:
    wallet = await nodes.open(bank)
    person = await wallet.signup(bank, balance=5_000)
    deposit = await wallet.move(DEPOSITS, person, 4_000)
    await wait_for(lambda: wallet.settled(deposit.body["id"]), "the deposit to settle")

    answer = await wallet.move(WITHDRAWALS, person, 1_500)
    assert answer.status == 202, answer.text
    transfer = answer.body
    assert (transfer["kind"], transfer["status"]) == ("withdrawal", "pending")
    assert transfer["from_wallet"] == person.wallet_id

    await wait_for(lambda: wallet.settled(transfer["id"]), "the withdrawal to settle")
    assert await wallet.status(transfer["id"]) == "posted"
    after = await wallet.wallet(person)
    assert (after["balance"], after["available"], after["pending_out"]) == (2_500, 2_500, 0)
    assert await bank.balance(person.bank_account) == person.bank_start - 4_000 + 1_500
    history = await wallet.api.get(
        f"/api/v1/wallets/{person.wallet_id}/transactions", token=person.token
    )
    assert [(item["kind"], item["status"]) for item in history.body["items"]] == [
        ("withdrawal", "posted"),
        ("deposit", "posted"),
    ]
    await assert_reconciled(wallet)


async def test_replays_answer_the_first_response_and_move_money_once(
    bank: Bank, nodes: Nodes
) -> None:
    wallet = await nodes.open(bank)
    person = await wallet.signup(bank, balance=10_000)
    key = f"deposit-{uuid.uuid4()}"

    first, second = await asyncio.gather(
        wallet.move(DEPOSITS, person, 1_000, key=key),
        wallet.move(DEPOSITS, person, 1_000, key=key),
    )
    assert {first.status, second.status} == {202}
    assert first.body == second.body
    transfer_id = first.body["id"]
    await wait_for(lambda: wallet.settled(transfer_id), "the deposit to settle")
    replay = await wallet.move(DEPOSITS, person, 1_000, key=key)
    assert replay.status == 202
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.body == first.body  # the first answer, as it was (pending)

    reused = await wallet.move(DEPOSITS, person, 999, key=key)
    assert reused.status == 422
    assert reused.error_code == "idempotency_key_reused"
    # Keys are per user, not per endpoint: a withdrawal cannot take the deposit's key.
    across = await wallet.move(WITHDRAWALS, person, 1_000, key=key)
    assert across.error_code == "idempotency_key_reused"

    assert await bank.transfer_ids(person.bank_account) == [transfer_id]
    assert (await wallet.wallet(person))["balance"] == 1_000
    await assert_reconciled(wallet)


async def test_withdrawal_beyond_available_is_409_and_holds_nothing(
    bank: Bank, nodes: Nodes
) -> None:
    wallet = await nodes.open(bank)
    person = await wallet.signup(bank, balance=1_000)
    deposit = await wallet.move(DEPOSITS, person, 600)
    await wait_for(lambda: wallet.settled(deposit.body["id"]), "the deposit to settle")

    answer = await wallet.move(WITHDRAWALS, person, 601)
    assert answer.status == 409
    assert answer.error_code == "insufficient_funds"
    after = await wallet.wallet(person)
    assert (after["balance"], after["available"], after["pending_out"]) == (600, 600, 0)
    history = await wallet.api.get(
        f"/api/v1/wallets/{person.wallet_id}/transactions", token=person.token
    )
    assert len(history.body["items"]) == 1


async def test_refusals_before_anything_is_recorded(bank: Bank, nodes: Nodes) -> None:
    wallet = await nodes.open(bank)
    alice = await wallet.signup(bank, balance=1_000)
    bob = await wallet.signup(bank, balance=1_000)
    for path in (DEPOSITS, WITHDRAWALS):
        other = await wallet.move(path, alice, 100, wallet=bob.wallet_id)
        assert (other.status, other.error_code) == (403, "forbidden")
        unknown = await wallet.move(path, alice, 100, wallet="wal_nope")
        assert (unknown.status, unknown.error_code) == (404, "not_found")
        currency = await wallet.move(path, alice, 100, currency="USD")
        assert (currency.status, currency.error_code) == (422, "currency_mismatch")
        for amount in (0, -5, 1.5, "100", True):
            bad = await wallet.move(path, alice, amount)
            assert (bad.status, bad.error_code) == (422, "validation_error")
            assert "amount" in bad.body["error"]["fields"]
        extra = await wallet.move(path, alice, 100, memo="hi")
        assert extra.status == 422
        anonymous = await wallet.api.post(path, json={"wallet": alice.wallet_id})
        assert anonymous.status == 401
    assert await bank.transfer_ids(alice.bank_account) == []


async def test_signup_verifies_the_account_through_the_gateway(bank: Bank, nodes: Nodes) -> None:
    wallet = await nodes.open(bank)
    person = await wallet.signup(bank, currency="USD")
    assert person.wallet["currency"] == "USD"  # the first wallet takes the account's currency

    body = {
        "email": "nobody@example.test",
        "password": "correct horse battery staple",
        "name": "Nobody",
        "bank_account": "DE00000000000000000000",
    }
    unknown = await wallet.api.post("/api/v1/auth/signup", json=body)
    assert (unknown.status, unknown.error_code) == (422, "bank_account_invalid")
    assert wallet.node.gateway.breaker.state == "closed"  # a refusal is not a failure


async def test_readyz_and_metrics_show_the_breaker(bank: Bank, nodes: Nodes) -> None:
    wallet = await nodes.open(bank)
    ready = await wallet.api.get("/readyz")
    assert ready.status == 200
    assert ready.body["checks"]["bank"]["breaker"] == "closed"
    assert ready.body["checks"]["bank"]["buffered"] == 0
    metrics = await wallet.api.get("/metrics")
    assert 'transakt_bank_breaker_state{state="closed"} 1' in metrics.text
    assert re.search(r"^transakt_bank_buffer_depth 0", metrics.text, re.MULTILINE)
    assert 'transakt_bank_requests_total{outcome="posted"}' in metrics.text


async def test_the_reconcile_command_finds_no_difference(
    bank: Bank, nodes: Nodes, tmp_path: Path
) -> None:
    wallet = await nodes.open(bank)
    person = await wallet.signup(bank, balance=3_000)
    deposit = await wallet.move(DEPOSITS, person, person.bank_start)
    await wait_for(lambda: wallet.settled(deposit.body["id"]), "the deposit to settle")
    refused = await wallet.move(DEPOSITS, person, 1)  # the bank account is empty now
    await wait_for(lambda: wallet.settled(refused.body["id"]), "the refusal to settle")
    assert await wallet.status(refused.body["id"]) == "voided"
    env = {key: value for key, value in os.environ.items() if not key.startswith("TRANSAKT_")}
    env |= {
        "TRANSAKT_DATABASE_URL": wallet.settings.database.url or "",
        "TRANSAKT_BANK_URL": bank.url,
        "TRANSAKT_BANK_SERVICE_SECRET": BANK_SECRET,
    }
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "transakt", "reconcile"],
        cwd=tmp_path,  # no .env file there
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no differences" in result.stdout
