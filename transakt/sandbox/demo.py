"""Demo bank accounts: the same numbers and passcodes on every machine, opened by the bank itself.

They are sandbox accounts anyone may use, so nothing about them is secret: the README and the
banner of `transakt up` name them. The sandbox opens each at start-up when it does not have it
yet (``TRANSAKT_BANK_DEMO_ACCOUNTS``, on by default), with its opening balance; a bank that has
it keeps it as it is. So `transakt up`, `transakt bank` and docker compose all offer them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from transakt.bankapi.models import BankAccount
from transakt.sandbox.errors import AccountExists
from transakt.sandbox.online import hash_passcode
from transakt.sandbox.store import BankStore

__all__ = ["DEMO_ACCOUNTS", "DemoAccount", "seed_demo_accounts"]

log = logging.getLogger("transakt.bank")


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


async def seed_demo_accounts(store: BankStore) -> list[BankAccount]:
    """Open the demo accounts the bank lacks; all of them as they are now."""
    accounts: list[BankAccount] = []
    for demo in DEMO_ACCOUNTS:
        found = await store.get_account(demo.account)
        if found is None:
            try:
                found = await store.create_account(
                    demo.name,
                    demo.currency,
                    demo.balance,
                    account=demo.account,
                    passcode_hash=hash_passcode(demo.passcode),
                )
                log.info("opened demo account %s (%s)", demo.account, demo.name)
            except AccountExists:  # another bank process on this schema opened it first
                found = await store.get_account(demo.account)
                assert found is not None
        accounts.append(found)
    return accounts
