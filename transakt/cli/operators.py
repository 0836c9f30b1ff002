"""``transakt operator grant EMAIL``: let a user review held payments.

Granting is an administrator's act on the database, not an API call: no user can make
themselves (or anyone) an operator over HTTP.
"""

from __future__ import annotations

import asyncio
import getpass

import asyncpg

from transakt.cli.checks import check_services
from transakt.cli.embedded import resolved_database
from transakt.cli.errors import EXIT_FAILURE, CommandError
from transakt.config.settings import Settings
from transakt.storage.reviews import grant_operator

__all__ = ["cmd_operator", "grant"]


async def grant(database_url: str, email: str, granted_by: str) -> bool | None:
    """Grant the operator role: True if granted now, False if already held, None: no such user."""
    connection = await asyncpg.connect(database_url)
    try:
        return await grant_operator(connection, email.strip().lower(), granted_by)
    finally:
        await connection.close()


def _who() -> str:
    """Who granted it, as far as the command line knows: ``cli:<login name>``."""
    try:
        return f"cli:{getpass.getuser()}"[:200]
    except (OSError, KeyError):
        return "cli"


def cmd_operator(settings: Settings, action: str, email: str) -> int:
    """Run ``operator grant EMAIL``."""
    if action != "grant":  # argparse allows only "grant"; kept for a future "revoke"
        raise CommandError(f"unknown operator action {action!r}")
    check_services(settings, redis=False)
    with resolved_database(settings) as database_url:
        try:
            granted = asyncio.run(grant(database_url, email, _who()))
        except asyncpg.UndefinedTableError:
            raise CommandError("the database is not migrated: run `transakt migrate`") from None
        except (OSError, asyncpg.PostgresError) as exc:
            raise CommandError(f"cannot write to the wallet database: {exc}") from None
    if granted is None:
        raise CommandError(f"no user has the e-mail {email}", EXIT_FAILURE)
    print(f"{email} is an operator" + ("" if granted else " already"))
    return 0
