"""The ``transakt`` command: one subcommand per part of the system, configured by TRANSAKT_*.

Every subcommand builds the one ``Settings`` object once and passes it down. The parts it runs
(wallet node, bank, worker) are imported inside their commands, so ``transakt --help`` stays fast
and a part that is not built yet is reported instead of breaking every other command.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, ModuleType
from typing import TYPE_CHECKING

from pydantic import ValidationError

from transakt.config.settings import InsecureSettings, Settings
from transakt.logs import configure_logging
from transakt.loop import run as run_loop

if TYPE_CHECKING:
    from transakt.bankapi.models import BankAccount
    from transakt.config import ResolvedServices

log = logging.getLogger("transakt.cli")

EXIT_FAILURE = 1
EXIT_USAGE = 2  # bad configuration or a part that does not exist: the user has to act
EXIT_INTERRUPTED = 130

# How long `transakt up` waits for both servers to answer /healthz, and for children to exit.
UP_START_TIMEOUT_SECONDS = 60.0
UP_STOP_TIMEOUT_SECONDS = 20.0


class CommandError(Exception):
    """A failure explained in one line; main() prints it without a traceback."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# --------------------------------------------------------------------------------------------
# Settings, logging, signals
# --------------------------------------------------------------------------------------------


def describe_validation_error(error: ValidationError) -> str:
    """One line naming each bad TRANSAKT_* variable and what is wrong with it."""
    parts = []
    for item in error.errors():
        message = str(item.get("msg", "invalid"))
        message = message.removeprefix("Value error, ")
        location = "_".join(str(part) for part in item.get("loc", ()))
        parts.append(f"TRANSAKT_{location.upper()}: {message}" if location else message)
    return "; ".join(parts) or str(error)


def load_settings() -> Settings:
    """Build the Settings once, turning configuration mistakes into a CommandError."""
    # Called through a Callable[..., Settings]: without pydantic's mypy plugin, mypy takes
    # Field(default, ...) for a required argument and would reject Settings().
    factory: Callable[..., Settings] = Settings
    try:
        return factory()
    except ValidationError as exc:
        raise CommandError(
            f"invalid settings: {describe_validation_error(exc)}", EXIT_USAGE
        ) from None
    except InsecureSettings as exc:  # in case a future pydantic stops wrapping ValueErrors
        raise CommandError(f"invalid settings: {exc}", EXIT_USAGE) from None


def _configure_logging(settings: Settings) -> None:
    # One record per line, control characters escaped: clients cannot forge log lines.
    try:
        configure_logging(settings.log_level, settings.log_format)
    except ValueError as exc:
        raise CommandError(f"invalid settings: TRANSAKT_LOG_LEVEL: {exc}", EXIT_USAGE) from None


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    # Raising unwinds the `with` blocks, so embedded servers are released on a plain `kill`.
    # Servers that handle signals themselves (aiohttp's run_app) replace this while they run.
    raise SystemExit(128 + signum)


def _import_part(module: str, what: str) -> ModuleType:
    """Import a part of the system, or explain that it does not exist yet."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        # Only the part itself (or its package) missing means "not built yet"; a missing
        # dependency deeper inside is a real error and keeps its traceback.
        if exc.name is not None and (module == exc.name or module.startswith(exc.name + ".")):
            raise CommandError(f"{what} is not available yet", EXIT_USAGE) from None
        raise


@contextlib.contextmanager
def _embedded_errors() -> Iterator[None]:
    from transakt.storage.embedded import EmbeddedError

    try:
        yield
    except EmbeddedError as exc:
        raise CommandError(str(exc)) from exc


# --------------------------------------------------------------------------------------------
# One part each
# --------------------------------------------------------------------------------------------


def cmd_migrate(settings: Settings) -> int:
    """Apply pending database migrations and list them."""
    from transakt.storage.embedded import resolved_database
    from transakt.storage.migrate import migrate

    with _embedded_errors(), resolved_database(settings) as database_url:
        applied = asyncio.run(migrate(database_url))
    if applied:
        for name in applied:
            print(f"applied {name}")
    else:
        print("database is up to date")
    return 0


def cmd_serve(settings: Settings) -> int:
    """Run the wallet node until SIGINT/SIGTERM."""
    app = _import_part("transakt.http.app", "the wallet node")
    from transakt.storage.embedded import resolved_services

    with _embedded_errors(), resolved_services(settings) as services:
        app.run(settings, services)
    return 0


def cmd_bank(settings: Settings) -> int:
    """Run the sandbox bank until SIGINT/SIGTERM."""
    server = _import_part("transakt.sandbox.server", "the sandbox bank")
    from transakt.storage.embedded import resolved_database

    with _embedded_errors(), resolved_database(settings) as database_url:
        server.run(settings, database_url)
    return 0


def cmd_worker(settings: Settings) -> int:
    """Run a background worker until SIGINT/SIGTERM."""
    worker = _import_part("transakt.worker", "the worker")
    from transakt.storage.embedded import resolved_services

    with _embedded_errors(), resolved_services(settings) as services:
        worker.run(settings, services)
    return 0


def cmd_reconcile(settings: Settings) -> int:
    """Compare the wallet ledger's deposits and withdrawals with the bank's; 1 if they differ."""
    import asyncpg

    from transakt.bankapi.errors import BankRequestRejected
    from transakt.errors import BankUnavailable
    from transakt.gateway.reconcile import reconcile
    from transakt.storage.embedded import resolved_database

    with _embedded_errors(), resolved_database(settings) as database_url:
        try:
            report = asyncio.run(reconcile(settings, database_url))
        except (BankUnavailable, BankRequestRejected) as exc:
            raise CommandError(f"cannot ask the bank at {settings.bank.url}: {exc}") from None
        except asyncpg.UndefinedTableError:
            raise CommandError(
                "the database holds no wallet ledger: run `transakt migrate`"
            ) from None
        except (OSError, asyncpg.PostgresError) as exc:
            raise CommandError(f"cannot read the wallet database: {exc}") from None
    for line in report.lines():
        print(line)
    return 0 if report.ok else EXIT_FAILURE


# --------------------------------------------------------------------------------------------
# transakt up: the whole system
# --------------------------------------------------------------------------------------------


def _local_url(host: str, port: int) -> str:
    """A URL this machine can reach a server on, given the address it binds."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


@dataclass
class _Child:
    name: str
    url: str
    process: asyncio.subprocess.Process


async def _port_answers(url: str) -> bool:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(parts.hostname, parts.port), timeout=1.0
        )
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def _spawn(name: str, command: str, url: str, env: dict[str, str]) -> _Child:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "transakt",
        command,
        env=env,
        stdin=subprocess.DEVNULL,
        # Own session: Ctrl-C in the terminal reaches only this supervisor, which then sends
        # each child exactly one SIGTERM. A second signal in the middle of a graceful shutdown
        # would cut it short.
        start_new_session=True,
    )
    log.info("started %s (pid %d)", name, process.pid)
    return _Child(name=name, url=url, process=process)


async def _stop_children(children: list[_Child]) -> None:
    for child in children:
        if child.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                child.process.terminate()
    for child in children:
        try:
            await asyncio.wait_for(child.process.wait(), UP_STOP_TIMEOUT_SECONDS)
        except TimeoutError:
            log.warning(
                "%s did not stop within %.0fs; killing it", child.name, UP_STOP_TIMEOUT_SECONDS
            )
            with contextlib.suppress(ProcessLookupError):
                child.process.kill()
            await child.process.wait()


def _exited(children: list[_Child]) -> _Child | None:
    return next((child for child in children if child.process.returncode is not None), None)


async def _wait_healthy(children: list[_Child], stop: asyncio.Event) -> bool:
    """Poll each child's /healthz until all answer 200; False when asked to stop first."""
    import aiohttp

    pending = {child.name: child for child in children}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + UP_START_TIMEOUT_SECONDS
    timeout = aiohttp.ClientTimeout(total=2.0)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        while pending:
            if stop.is_set():
                return False
            if (gone := _exited(children)) is not None:
                raise CommandError(
                    f"the {gone.name} exited with code {gone.process.returncode} while starting"
                )
            if loop.time() > deadline:
                names = ", ".join(pending)
                raise CommandError(
                    f"no answer on /healthz from {names} within {UP_START_TIMEOUT_SECONDS:.0f}s"
                )
            for name, child in list(pending.items()):
                try:
                    async with session.get(f"{child.url}/healthz") as response:
                        if response.status == 200:
                            del pending[name]
                except (aiohttp.ClientError, TimeoutError):
                    pass  # not listening yet
            if pending:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.2)
    return True


def _banner(
    settings: Settings,
    wallet_url: str,
    bank_url: str,
    data_dir: Path,
    demo_accounts: Sequence[BankAccount] = (),
) -> str:
    public = (settings.public_url or wallet_url).rstrip("/")
    lines = [
        "",
        "Transakt is up.",
        f"  wallet     {public}",
        f"  dashboard  {public}/",
        f"  API        {public}/api/v1/openapi.json",
        f"  bank       {bank_url}  (sandbox)",
        f"  mail       {data_dir / 'mail'}  (local sink)",
        f"  data       {data_dir}",
        "",
    ]
    if demo_accounts:
        lines.append("  demo bank accounts (sign up with one, under its holder's name):")
        lines.extend(
            f"    {account.account}  {account.name}  {account.currency} "
            f"balance {account.balance} (minor units)  passcode {account.passcode}"
            for account in demo_accounts
        )
        lines += [
            "  the holder's statement (shows the two small deposits that link the account):",
            f"    curl -s -u ACCOUNT:PASSCODE {bank_url}/online/v1/statement",
            "  e-mail codes arrive in the mail sink above",
            "",
        ]
    lines += [f"  try:  curl -s {public}/readyz", "", "Press Ctrl-C to stop.", ""]
    return "\n".join(lines)


async def _demo_accounts(settings: Settings, bank_url: str) -> list[BankAccount]:
    from transakt.gateway.client import BankClient
    from transakt.sandbox.demo import ensure_demo_accounts

    secret = settings.bank.service_secret.get_secret_value()
    async with BankClient(bank_url, secret, timeout=10.0) as bank:
        return await ensure_demo_accounts(bank)


def _child_env(
    settings: Settings, services: ResolvedServices, data_dir: Path, bank_url: str
) -> dict[str, str]:
    env = dict(os.environ)
    # The children use the servers this process started, as configured services: the same
    # code path as a deployment with real URLs, and one PostgreSQL for both.
    env["TRANSAKT_DATABASE_URL"] = services.database_url
    env["TRANSAKT_REDIS_URL"] = services.redis_url
    env["TRANSAKT_DATA_DIR"] = str(data_dir)
    if "url" not in settings.bank.model_fields_set:
        # Point the wallet at the bank this command starts, even on a non-default port.
        env["TRANSAKT_BANK_URL"] = bank_url
    return env


async def _up(settings: Settings) -> int:
    from transakt.storage.embedded import services as resolve_services
    from transakt.storage.migrate import migrate

    if settings.port == 0 or settings.bank.port == 0:
        raise CommandError(
            "transakt up needs fixed ports: TRANSAKT_PORT and TRANSAKT_BANK_PORT must not be 0",
            EXIT_USAGE,
        )
    # Fail before anything starts, rather than fail later on a server that cannot be spawned.
    _import_part("transakt.http.app", "the wallet node")
    _import_part("transakt.sandbox.server", "the sandbox bank")

    wallet_url = _local_url(settings.host, settings.port)
    bank_url = _local_url(settings.bank.host, settings.bank.port)
    for name, url in (("wallet node", wallet_url), ("bank", bank_url)):
        if await _port_answers(url):
            raise CommandError(f"something already listens on {url}; cannot start the {name}")

    data_dir = settings.data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "mail").mkdir(exist_ok=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    try:
        with _embedded_errors():
            async with resolve_services(settings) as services:
                if stop.is_set():
                    return EXIT_INTERRUPTED
                applied = await migrate(services.database_url)
                if applied:
                    log.info("applied migrations: %s", ", ".join(applied))
                if stop.is_set():
                    return EXIT_INTERRUPTED
                return await _supervise(settings, services, data_dir, wallet_url, bank_url, stop)
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)


async def _supervise(
    settings: Settings,
    services: ResolvedServices,
    data_dir: Path,
    wallet_url: str,
    bank_url: str,
    stop: asyncio.Event,
) -> int:
    env = _child_env(settings, services, data_dir, bank_url)
    children: list[_Child] = []
    try:
        # The bank first: the wallet node calls it. Both run as child processes rather than
        # the wallet in this process: their run() functions block and own their event loops
        # and signal handlers, whereas this supervisor must stay free to notice a child dying
        # and to answer Ctrl-C; and the wallet then runs exactly as `transakt serve` does in a
        # deployment, against URLs handed to it.
        children.append(await _spawn("bank", "bank", bank_url, env))
        children.append(await _spawn("wallet node", "serve", wallet_url, env))
        if not await _wait_healthy(children, stop):
            return EXIT_INTERRUPTED
        demo = await _demo_accounts(settings, bank_url)
        print(_banner(settings, wallet_url, bank_url, data_dir, demo), flush=True)

        stopping = asyncio.create_task(stop.wait())
        exits = [asyncio.create_task(child.process.wait()) for child in children]
        try:
            await asyncio.wait([stopping, *exits], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (stopping, *exits):
                task.cancel()
            await asyncio.gather(stopping, *exits, return_exceptions=True)
        if (gone := _exited(children)) is not None and not stop.is_set():
            log.error("the %s exited with code %s; stopping", gone.name, gone.process.returncode)
            return EXIT_FAILURE
        print("Stopping Transakt ...", flush=True)
        return 0
    finally:
        await _stop_children(children)


def cmd_up(settings: Settings) -> int:
    """Run wallet node and sandbox bank on embedded PostgreSQL and Redis until Ctrl-C."""
    return run_loop(_up(settings), settings.event_loop)


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------

_COMMANDS: dict[str, tuple[Callable[[Settings], int], str]] = {
    "up": (
        cmd_up,
        "run the whole system (wallet node, sandbox bank, embedded PostgreSQL and Redis)",
    ),
    "serve": (cmd_serve, "run the wallet node (HTTP API, actors, dashboard)"),
    "bank": (cmd_bank, "run the sandbox bank"),
    "worker": (cmd_worker, "run a background worker"),
    "migrate": (cmd_migrate, "apply pending database migrations"),
    "reconcile": (cmd_reconcile, "check deposits and withdrawals against the bank"),
}

_EPILOG = (
    "Configuration comes from TRANSAKT_* environment variables or a .env file; with no "
    "TRANSAKT_DATABASE_URL / TRANSAKT_REDIS_URL, embedded servers run under TRANSAKT_DATA_DIR."
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser: one subcommand per part of the system."""
    parser = argparse.ArgumentParser(
        prog="transakt", description="Transakt, a digital wallet backend.", epilog=_EPILOG
    )
    subcommands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (handler, summary) in _COMMANDS.items():
        sub = subcommands.add_parser(name, help=summary, description=summary, epilog=_EPILOG)
        sub.set_defaults(handler=handler)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the transakt command line; return the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    handler: Callable[[Settings], int] = args.handler
    with contextlib.suppress(ValueError):  # not the main thread (embedded use): leave it be
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        settings = load_settings()
        _configure_logging(settings)
        return handler(settings)
    except CommandError as exc:
        print(f"transakt {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
