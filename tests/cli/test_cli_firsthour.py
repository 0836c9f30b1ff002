"""The first hour's command line: `bank --mode`, JSON logs from a real process, and one line
(exit 2, no traceback) for each mistake."""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from transakt.bankapi.faults import Faults
from transakt.cli import main
from transakt.config.settings import DEFAULT_BANK_SECRET
from transakt.gateway import BankClient
from transakt.sandbox.demo import DEMO_ACCOUNTS

ROOT = Path(__file__).resolve().parent.parent.parent


def _env(**extra: str) -> dict[str, str]:
    import os

    env = {key: value for key, value in os.environ.items() if not key.startswith("TRANSAKT_")}
    env["PYTHONPATH"] = str(ROOT)  # this checkout, whatever copy is installed
    return {**env, **extra}


def _transakt(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "transakt", *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def _faults(url: str) -> Faults:
    async with BankClient(url, DEFAULT_BANK_SECRET, timeout=5.0) as bank:
        return await bank.get_faults()


async def _drop_schema(database_url: str, schema: str) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await connection.close()


def _one_line(result: subprocess.CompletedProcess[str], command: str) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"transakt {command}: "), lines[0]
    return lines[0]


def test_bank_help_names_the_modes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["bank", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--mode MODE" in out and "TRANSAKT_BANK_MODE" in out
    for mode in ("normal", "slow", "down", "refusing"):
        assert mode in out


def test_an_unknown_mode_option_is_one_line(tmp_path: Path) -> None:
    line = _one_line(_transakt("bank", "--mode", "broken", cwd=tmp_path, env=_env()), "bank")
    assert "--mode" in line and "'broken'" in line and "refusing" in line


def test_an_unknown_mode_variable_names_it(tmp_path: Path) -> None:
    result = _transakt("bank", cwd=tmp_path, env=_env(TRANSAKT_BANK_MODE="off"))
    line = _one_line(result, "bank")
    assert "TRANSAKT_BANK_MODE" in line


def test_a_bad_log_format_names_its_variable(tmp_path: Path) -> None:
    result = _transakt("migrate", cwd=tmp_path, env=_env(TRANSAKT_LOG_FORMAT="xml"))
    assert "TRANSAKT_LOG_FORMAT" in _one_line(result, "migrate")


def test_version_option(tmp_path: Path) -> None:
    result = _transakt("--version", cwd=tmp_path, env=_env())
    assert result.returncode == 0 and result.stdout.startswith("transakt "), result


@pytest.mark.slow
def test_bank_starts_in_the_mode_given_and_logs_json(database_url: str, tmp_path: Path) -> None:
    schema = f"bank_cli_{secrets.token_hex(4)}"  # fresh: the demo accounts are opened, and logged
    env = _env(
        TRANSAKT_DATABASE_URL=database_url,
        TRANSAKT_BANK_SCHEMA=schema,
        TRANSAKT_LOG_FORMAT="json",
        TRANSAKT_BANK_FAULT_LATENCY_MS="50",  # replaced by the mode
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "transakt", "bank", "--port", "0", "--mode", "down"],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "(outage mode: down)" in line, line
        url = line.split("listening on ", 1)[1].split()[0]
        faults = asyncio.run(_faults(url))
        assert faults.refuse_all is True and faults.latency_ms == 0
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
        asyncio.run(_drop_schema(database_url, schema))
    assert process.returncode == 0, stderr
    records = [json.loads(text) for text in stderr.splitlines() if text.strip()]
    assert records, "the bank logged nothing"
    for record in records:
        assert set(record) >= {"time", "level", "logger", "message"}, record
    opened = [record["message"] for record in records if "opened demo account" in record["message"]]
    assert len(opened) == len(DEMO_ACCOUNTS)
