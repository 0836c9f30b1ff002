"""Demo bank accounts for `transakt up`: the same numbers and passcodes on every machine.

They are sandbox accounts anyone may use, so nothing about them is secret: the README and the
banner of `transakt up` name them. Each is opened when the bank does not have it yet, with its
opening balance; a bank that has it keeps it as it is (its balance is whatever it was left at).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from transakt.bankapi.errors import BankRequestRejected
from transakt.bankapi.models import BankAccount
from transakt.gateway.client import BankClient

__all__ = ["DEMO_ACCOUNTS", "DemoAccount", "ensure_demo_accounts"]


@dataclass(frozen=True, slots=True)
class DemoAccount:
    """A sandbox account with a fixed number and online-banking passcode."""

    account: str
    name: str
    currency: str
    balance: int
    passcode: str


DEMO_ACCOUNTS: tuple[DemoAccount, ...] = (
    DemoAccount("DE00100000000000000001", "Alice Example", "EUR", 1_000_000, "alice-sandbox"),
    DemoAccount("DE00100000000000000002", "Bob Example", "EUR", 500_000, "bob-sandbox"),
    DemoAccount("US00100000000000000003", "Chloe Example", "USD", 250_000, "chloe-sandbox"),
)


async def ensure_demo_accounts(bank: BankClient) -> list[BankAccount]:
    """The demo accounts (opened now where the bank lacks them), with their passcodes."""
    accounts: list[BankAccount] = []
    for demo in DEMO_ACCOUNTS:
        found = await bank.get_account(demo.account)
        if found is None:
            try:
                found = await bank.create_account(
                    demo.name,
                    demo.currency,
                    demo.balance,
                    account=demo.account,
                    passcode=demo.passcode,
                )
            except BankRequestRejected as error:
                if error.code != "account_exists":
                    raise
                found = await bank.get_account(demo.account)  # another process opened it
                assert found is not None
        accounts.append(replace(found, passcode=demo.passcode))
    return accounts
