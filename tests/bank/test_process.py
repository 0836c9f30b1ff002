"""The bank as its own process, configured by TRANSAKT_* variables, driven over HTTP."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import asyncpg

from transakt.gateway import BankClient
from transakt.sandbox.migrations import MIGRATIONS

from .conftest import SECRET

PROGRAM = (
    "from transakt.sandbox.server import run\n"
    "from transakt.config import Settings\n"
    "settings = Settings()\n"
    "run(settings.bank, settings.database.url, pool_max=settings.database.pool_max)\n"
)


async def test_bank_runs_as_a_separate_process(bank_database_url: str, tmp_path: Path) -> None:
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("TRANSAKT_")
    }
    environment |= {
        "TRANSAKT_DATABASE_URL": bank_database_url,
        "TRANSAKT_BANK_HOST": "127.0.0.1",
        "TRANSAKT_BANK_PORT": "0",  # the bank prints the port the OS gave it
        "TRANSAKT_BANK_SCHEMA": "bank_process",
        "TRANSAKT_BANK_SERVICE_SECRET": SECRET,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        PROGRAM,
        env=environment,
        cwd=tmp_path,  # no stray .env file is read
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout=60)
        match = re.search(rb"listening on (http://\S+)", line)
        assert match, line
        url = match.group(1).decode()

        async with BankClient(url, SECRET, timeout=5.0) as bank:
            account = await bank.create_account("Process", "EUR", 1_000)
            assert await bank.verify_user(account.account) is not None
            first = await bank.transfer("p-1", account.account, "debit", 250, "EUR")
            again = await bank.transfer("p-1", account.account, "debit", 250, "EUR")
            assert first == again and first.completed
            found = await bank.get_account(account.account)
            assert found is not None and found.balance == 750

        # The process made its own schema, migrations recorded.
        connection = await asyncpg.connect(bank_database_url)
        try:
            versions = await connection.fetch(
                "SELECT version FROM bank_process.schema_migrations ORDER BY version"
            )
        finally:
            await connection.close()
        assert [row["version"] for row in versions] == [m.version for m in MIGRATIONS]

        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), timeout=30) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
