"""Demo accounts for `transakt up`: fixed numbers and passcodes, opened once, kept as they are."""

from __future__ import annotations

from transakt.gateway import BankClient
from transakt.sandbox.demo import DEMO_ACCOUNTS, ensure_demo_accounts


async def test_demo_accounts_are_the_documented_ones_with_working_passcodes(
    bank_client: BankClient,
) -> None:
    accounts = await ensure_demo_accounts(bank_client)
    assert [(a.account, a.name, a.currency, a.balance, a.passcode) for a in accounts] == [
        (d.account, d.name, d.currency, d.balance, d.passcode) for d in DEMO_ACCOUNTS
    ]
    for account in accounts:
        assert account.passcode is not None
        statement = await bank_client.statement(account.account, account.passcode)
        assert statement.balance == account.balance
        assert statement.name == account.name


async def test_a_second_run_keeps_the_accounts_and_their_balances(
    bank_client: BankClient,
) -> None:
    first = await ensure_demo_accounts(bank_client)
    # Money moved since the first run: the second run must not reset or reopen anything.
    alice = DEMO_ACCOUNTS[0]
    await bank_client.transfer("demo-test-1", alice.account, "debit", 1_000, alice.currency)
    again = await ensure_demo_accounts(bank_client)
    assert [a.account for a in again] == [a.account for a in first]
    assert again[0].balance == alice.balance - 1_000
    assert [a.passcode for a in again] == [d.passcode for d in DEMO_ACCOUNTS]
