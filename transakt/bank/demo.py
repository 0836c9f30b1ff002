"""Demo bank accounts for `transakt up`: created once, remembered under the data directory."""

from __future__ import annotations

import json
from pathlib import Path

from transakt.bank.client import BankClient
from transakt.bank.models import BankAccount

# (name, currency, opening balance in minor units)
DEMO_ACCOUNTS: tuple[tuple[str, str, int], ...] = (
    ("Alice Example", "EUR", 1_000_000),
    ("Bob Example", "EUR", 500_000),
    ("Chloe Example", "USD", 250_000),
)


async def ensure_demo_accounts(bank: BankClient, data_dir: Path) -> list[BankAccount]:
    """The demo accounts, reusing those recorded by an earlier run when the bank still has them."""
    record = data_dir / "demo-accounts.json"
    known: list[str] = []
    if record.exists():
        known = [str(number) for number in json.loads(record.read_text(encoding="utf-8"))]
    accounts: list[BankAccount] = []
    for index, (name, currency, balance) in enumerate(DEMO_ACCOUNTS):
        found = await bank.get_account(known[index]) if index < len(known) else None
        accounts.append(found or await bank.create_account(name, currency, balance))
    record.write_text(json.dumps([account.account for account in accounts]), encoding="utf-8")
    return accounts
