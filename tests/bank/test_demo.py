"""Demo accounts: fixed numbers and passcodes, opened by the bank at start, kept as they are."""

from __future__ import annotations

from transakt.gateway import BankClient
from transakt.sandbox.demo import DEMO_ACCOUNTS, seed_demo_accounts
from transakt.sandbox.views import STORE_KEY

from .conftest import RunningBank


async def test_the_bank_opens_the_documented_accounts_with_working_passcodes(
    bank_client: BankClient, bank: RunningBank
) -> None:
    # The session bank's tables were emptied for this test: open the accounts as a start does.
    await seed_demo_accounts(bank.app[STORE_KEY])
    for demo in DEMO_ACCOUNTS:
        statement = await bank_client.statement(demo.account, demo.passcode)
        assert (statement.account, statement.name, statement.currency) == (
            demo.account,
            demo.name,
            demo.currency,
        )
        assert statement.balance == demo.balance


async def test_a_second_start_keeps_the_accounts_and_their_balances(
    bank_client: BankClient, bank: RunningBank
) -> None:
    store = bank.app[STORE_KEY]
    await seed_demo_accounts(store)
    alice = DEMO_ACCOUNTS[0]
    await bank_client.transfer("demo-test-1", alice.account, "debit", 1_000, alice.currency)
    again = await seed_demo_accounts(store)
    assert [a.account for a in again] == [d.account for d in DEMO_ACCOUNTS]
    assert again[0].balance == alice.balance - 1_000
