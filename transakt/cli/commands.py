"""One command per part of the system: serve, bank, worker, migrate, reconcile.

Each takes the one ``Settings`` (already carrying the command line's options) and returns the
exit code. The parts they run are imported inside them, so ``transakt --help`` stays fast and a
part that is not built yet is reported instead of breaking every other command. Each checks
what it can before starting anything (see :mod:`transakt.cli.checks`).
"""

from __future__ import annotations

import asyncio

from transakt.cli.checks import Address, check_port, check_services, listen_errors
from transakt.cli.embedded import resolved_database, resolved_services
from transakt.cli.errors import EXIT_FAILURE, CommandError
from transakt.config.settings import Settings
from transakt.loop import run as run_loop

__all__ = [
    "bank_address",
    "cmd_bank",
    "cmd_migrate",
    "cmd_reconcile",
    "cmd_serve",
    "cmd_worker",
    "wallet_address",
]


def wallet_address(settings: Settings, port_option: str = "--port") -> Address:
    """Where the wallet node listens, and what sets it."""
    return Address(
        "the wallet node",
        settings.host,
        settings.port,
        "TRANSAKT_HOST / --host",
        f"TRANSAKT_PORT / {port_option}",
    )


def bank_address(settings: Settings, port_option: str = "--port") -> Address:
    """Where the sandbox bank listens, and what sets it (``transakt bank --host --port``)."""
    return Address(
        "the sandbox bank",
        settings.bank.host,
        settings.bank.port,
        "TRANSAKT_BANK_HOST / --host",
        f"TRANSAKT_BANK_PORT / {port_option}",
    )


def cmd_migrate(settings: Settings) -> int:
    """Apply pending database migrations and list them."""
    from transakt.storage.migrate import migrate

    check_services(settings, redis=False)
    with resolved_database(settings) as database_url:
        applied = asyncio.run(migrate(database_url))
    if applied:
        for name in applied:
            print(f"applied {name}")
    else:
        print("database is up to date")
    return 0


def cmd_serve(settings: Settings) -> int:
    """Run the wallet node until SIGINT/SIGTERM."""
    from transakt.http import app  # imported here: `transakt --help` stays fast

    address = wallet_address(settings)
    check_port(address)
    check_services(settings, redis=True)
    with resolved_services(settings) as services, listen_errors(address):
        app.run(settings, services)
    return 0


def cmd_bank(settings: Settings) -> int:
    """Run the sandbox bank until SIGINT/SIGTERM."""
    from transakt.sandbox import server

    address = bank_address(settings)
    check_port(address)
    check_services(settings, redis=False)
    with resolved_database(settings) as database_url, listen_errors(address):
        server.run(
            settings.bank,  # the bank reads its own section of the settings
            database_url,
            event_loop=settings.event_loop,
            pool_max=settings.database.pool_max,
        )
    return 0


def cmd_worker(settings: Settings) -> int:
    """Run a background worker until SIGINT/SIGTERM."""
    from transakt.composition import worker

    # The worker uses the database only: no Redis is checked, started, or (in prod) required.
    check_services(settings, redis=False)
    with resolved_database(settings) as database_url:
        run_loop(worker.serve_worker(settings, database_url), settings.event_loop)
    return 0


def cmd_reconcile(settings: Settings) -> int:
    """Compare the wallet ledger's deposits and withdrawals with the bank's; 1 if they differ."""
    import asyncpg

    from transakt.bankapi.errors import BankRequestRejected
    from transakt.errors import BankUnavailable
    from transakt.gateway.reconcile import reconcile

    check_services(settings, redis=False)
    with resolved_database(settings) as database_url:
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
