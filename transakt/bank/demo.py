"""Demo bank accounts for `transakt up`: created once, remembered under the data directory.

The record (``demo-accounts.json``) keeps each account's number and its holder's passcode,
``[{"account": ..., "passcode": ...}]``, because the bank shows a passcode only when it opens
the account. A record written before passcodes existed (a plain list of numbers), an entry
without a passcode, or an account the bank no longer has means a new account.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from transakt.bank.client import BankClient
from transakt.bank.models import BankAccount

__all__ = ["DEMO_ACCOUNTS", "ensure_demo_accounts"]

# (name, currency, opening balance in minor units)
DEMO_ACCOUNTS: tuple[tuple[str, str, int], ...] = (
    ("Alice Example", "EUR", 1_000_000),
    ("Bob Example", "EUR", 500_000),
    ("Chloe Example", "USD", 250_000),
)

_RECORD = "demo-accounts.json"


def _read_record(path: Path) -> list[tuple[str, str] | None]:
    """(account, passcode) per slot of the record; None where a slot is unusable."""
    try:
        entries: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []  # no record yet, or one that cannot be read: start afresh
    if not isinstance(entries, list):
        return []
    slots: list[tuple[str, str] | None] = []
    for entry in entries:
        if (
            isinstance(entry, dict)
            and isinstance(entry.get("account"), str)
            and isinstance(entry.get("passcode"), str)
        ):
            slots.append((entry["account"], entry["passcode"]))
        else:
            slots.append(None)  # an old record's bare number: its passcode is unknown
    return slots


def _write_record(path: Path, accounts: list[BankAccount]) -> None:
    entries = [{"account": account.account, "passcode": account.passcode} for account in accounts]
    # Passcodes are credentials: readable by the owner only, and replaced in one step.
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        json.dump(entries, file, indent=2)
    os.replace(temporary, path)


async def ensure_demo_accounts(bank: BankClient, data_dir: Path) -> list[BankAccount]:
    """The demo accounts with their passcodes, reusing those recorded by an earlier run when
    the bank still has them."""
    record = data_dir / _RECORD
    known = _read_record(record)
    accounts: list[BankAccount] = []
    for index, (name, currency, balance) in enumerate(DEMO_ACCOUNTS):
        slot = known[index] if index < len(known) else None
        found = await bank.get_account(slot[0]) if slot is not None else None
        if found is not None and slot is not None:
            accounts.append(replace(found, passcode=slot[1]))
        else:
            accounts.append(await bank.create_account(name, currency, balance))
    _write_record(record, accounts)
    return accounts
