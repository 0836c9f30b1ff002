"""Demo accounts for `transakt up`: made once, with passcodes, remembered under the data dir."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from transakt.bank import BankClient
from transakt.bank.demo import DEMO_ACCOUNTS, ensure_demo_accounts


async def test_demo_accounts_come_with_working_passcodes(
    bank_client: BankClient, tmp_path: Path
) -> None:
    accounts = await ensure_demo_accounts(bank_client, tmp_path)
    assert [(a.name, a.currency, a.balance) for a in accounts] == list(DEMO_ACCOUNTS)
    record = tmp_path / "demo-accounts.json"
    assert json.loads(record.read_text(encoding="utf-8")) == [
        {"account": a.account, "passcode": a.passcode} for a in accounts
    ]
    assert stat.S_IMODE(record.stat().st_mode) == 0o600  # it holds credentials
    for account in accounts:
        assert account.passcode is not None
        statement = await bank_client.statement(account.account, account.passcode)
        assert statement.balance == account.balance


async def test_a_second_run_reuses_them(bank_client: BankClient, tmp_path: Path) -> None:
    first = await ensure_demo_accounts(bank_client, tmp_path)
    again = await ensure_demo_accounts(bank_client, tmp_path)
    assert again == first
    assert [a.passcode for a in again] == [a.passcode for a in first]


async def test_an_old_record_of_bare_numbers_means_new_accounts(
    bank_client: BankClient, tmp_path: Path
) -> None:
    # Written before passcodes existed: the numbers are real, but nobody knows a passcode.
    old = [
        (await bank_client.create_account(name, currency, balance)).account
        for name, currency, balance in DEMO_ACCOUNTS
    ]
    (tmp_path / "demo-accounts.json").write_text(json.dumps(old), encoding="utf-8")
    accounts = await ensure_demo_accounts(bank_client, tmp_path)
    assert not {a.account for a in accounts} & set(old)
    assert all(a.passcode for a in accounts)


async def test_accounts_the_bank_lost_are_made_again(
    bank_client: BankClient, tmp_path: Path
) -> None:
    first = await ensure_demo_accounts(bank_client, tmp_path)
    record = tmp_path / "demo-accounts.json"
    entries = json.loads(record.read_text(encoding="utf-8"))
    entries[1]["account"] = "DE00000000000000000000"  # as after a bank reset
    record.write_text(json.dumps(entries), encoding="utf-8")
    again = await ensure_demo_accounts(bank_client, tmp_path)
    assert (again[0], again[2]) == (first[0], first[2])
    assert again[1].account not in (first[1].account, "DE00000000000000000000")
    assert again[1].passcode is not None


async def test_an_unreadable_record_starts_afresh(bank_client: BankClient, tmp_path: Path) -> None:
    (tmp_path / "demo-accounts.json").write_text("{not json", encoding="utf-8")
    accounts = await ensure_demo_accounts(bank_client, tmp_path)
    assert len(accounts) == len(DEMO_ACCOUNTS) and all(a.passcode for a in accounts)
