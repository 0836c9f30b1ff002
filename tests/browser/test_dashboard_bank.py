"""Deposits and withdrawals in the browser: the status moves live from pending to its end."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from httpkit import BANK_SCHEMA, PASSWORD, Api, Fund, unique_email
from trustkit import link_bank_account, micro_deposits

from transakt.bankapi.constants import MAX_BALANCE
from transakt.gateway import BankClient

from .helpers import (
    OpenPage,
    expect,
    figure,
    history,
    log_in,
    open_tab,
    operations,
)

# Long enough that the page is seen pending before the bank answers, short against the
# gateway's call timeout.
BANK_LATENCY_MS = 1500


@pytest.fixture
async def slow_bank(bank_client: BankClient) -> AsyncIterator[None]:
    """The sandbox bank answers after a delay, for one test."""
    await bank_client.set_faults(latency_ms=BANK_LATENCY_MS)
    try:
        yield
    finally:
        await bank_client.set_faults(latency_ms=0)


async def _sign_up(
    api: Api, bank_client: BankClient, name: str, bank_balance: int
) -> tuple[str, str]:
    """A user whose bank account holds ``bank_balance`` EUR cents, linked (the micro-deposits
    taken back out, so the account holds exactly that): (e-mail, bank account)."""
    account = await bank_client.create_account(name, "EUR", bank_balance)
    assert account.passcode is not None
    email = unique_email("bank")
    answer = await api.post(
        "/api/v1/auth/signup",
        json={"email": email, "password": PASSWORD, "name": name, "bank_account": account.account},
    )
    assert answer.status == 201, answer.text
    login = await api.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    token = login.body["access_token"]
    linked = await link_bank_account(api, bank_client, token, account.account, account.passcode)
    assert linked.body["status"] == "linked", linked.text
    # The holder spends the micro-deposits (a debit the wallet knows nothing about), so the
    # figures the page shows below are the round ones of the test.
    spent = sum(await micro_deposits(bank_client, account.account, account.passcode))
    await bank_client.transfer(f"spend-{account.account}", account.account, "debit", spent, "EUR")
    return email, account.account


@pytest.mark.usefixtures("slow_bank")
async def test_a_deposit_goes_pending_then_posted(
    open_page: OpenPage, api: Api, bank_client: BankClient
) -> None:
    email, _ = await _sign_up(api, bank_client, "Dee Positor", 10_000)
    page = await open_page()
    await log_in(page, email, PASSWORD)
    await expect(page.get_by_text("Live", exact=True)).to_be_visible()

    await open_tab(page, "Bank")
    form = page.get_by_role("region", name="Bank", exact=True)
    await form.get_by_label("Amount").fill("25.50")
    await form.get_by_role("button", name="Deposit from bank").click()
    operation = operations(page).first
    await expect(operation).to_have_text("Deposit 25.50 EUR Pending")
    await expect(figure(page, "pending-in")).to_have_text("25.50 EUR")
    await expect(operation).to_have_text("Deposit 25.50 EUR Posted")
    await expect(figure(page, "balance")).to_have_text("25.50 EUR")
    await expect(figure(page, "pending-in")).to_have_text("0.00 EUR")
    await expect(history(page).first).to_contain_text("Deposit from bank")
    await expect(history(page).first).to_contain_text("Posted")


async def test_a_deposit_beyond_the_bank_balance_is_voided_with_the_reason(
    open_page: OpenPage, api: Api, bank_client: BankClient
) -> None:
    email, _ = await _sign_up(api, bank_client, "Penny Less", 1_000)
    page = await open_page()
    await log_in(page, email, PASSWORD)
    await open_tab(page, "Bank")
    form = page.get_by_role("region", name="Bank", exact=True)
    await form.get_by_label("Amount").fill("10.01")
    await form.get_by_role("button", name="Deposit from bank").click()
    await expect(operations(page).first).to_have_text(
        "Deposit 10.01 EUR Voided: the bank account does not have enough money"
    )
    await expect(figure(page, "balance")).to_have_text("0.00 EUR")


async def test_a_withdrawal_the_bank_refuses_is_voided_with_the_reason(
    open_page: OpenPage,
    api: Api,
    bank_client: BankClient,
    fund: Fund,
    wallet_pool: asyncpg.Pool,
) -> None:
    email, account = await _sign_up(api, bank_client, "Full Account", 0)
    login = await api.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    me = await api.get("/api/v1/me", token=login.body["access_token"])
    wallet_id = me.body["wallets"][0]["id"]
    await fund(wallet_id, 5_000)
    # The bank account is full: the bank refuses any credit (balance_limit_exceeded).
    # No API fills an account to the limit, so the test sets the bank's own row.
    async with wallet_pool.acquire() as connection:
        updated = await connection.execute(
            f"UPDATE {BANK_SCHEMA}.accounts SET balance = $2 WHERE account = $1",
            account,
            MAX_BALANCE,
        )
    assert updated == "UPDATE 1"

    page = await open_page()
    await log_in(page, email, PASSWORD)
    await open_tab(page, "Bank")
    form = page.get_by_role("region", name="Bank", exact=True)
    await form.get_by_label("Amount").fill("20.00")
    await form.get_by_role("button", name="Withdraw to bank").click()
    await expect(operations(page).first).to_have_text(
        "Withdrawal 20.00 EUR Voided: the bank account cannot hold that much"
    )
    # The hold is released: all the money is back and available.
    await expect(figure(page, "balance")).to_have_text("50.00 EUR")
    await expect(figure(page, "available")).to_have_text("50.00 EUR")
    await expect(figure(page, "pending-out")).to_have_text("0.00 EUR")
    await expect(history(page).first).to_contain_text("the bank account cannot hold that much")
