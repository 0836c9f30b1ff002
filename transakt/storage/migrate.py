"""Ordered SQL migrations, each applied once in its own transaction and recorded."""

from __future__ import annotations

import hashlib
import logging
from importlib import resources

import asyncpg

from transakt.storage.typing import Connection

log = logging.getLogger("transakt.storage")

# Any constant works; it only has to be the same for every node so two starting nodes take turns.
_MIGRATION_LOCK_ID = 0x7472616E73616B74  # "transakt"


def available_migrations() -> list[tuple[str, str]]:
    """The packaged migrations as (name, sql), in name order."""
    folder = resources.files("transakt.storage") / "migrations"
    files = sorted(
        (entry for entry in folder.iterdir() if entry.name.endswith(".sql")),
        key=lambda entry: entry.name,
    )
    return [(entry.name, entry.read_text(encoding="utf-8")) for entry in files]


async def migrate(dsn: str) -> list[str]:
    """Apply every migration not yet recorded; return the names applied now."""
    connection = await asyncpg.connect(dsn)
    try:
        return await migrate_connection(connection)
    finally:
        await connection.close()


async def migrate_connection(connection: Connection) -> list[str]:
    """Apply pending migrations over an open connection, under a cluster-wide advisory lock."""
    applied_now: list[str] = []
    await connection.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK_ID)
    try:
        await connection.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                name       text PRIMARY KEY,
                checksum   text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """
        )
        rows = await connection.fetch("SELECT name, checksum FROM schema_migrations")
        recorded = {row["name"]: row["checksum"] for row in rows}
        for name, sql in available_migrations():
            checksum = hashlib.sha256(sql.encode()).hexdigest()
            if name in recorded:
                if recorded[name] != checksum:
                    # An applied migration was edited: refuse rather than drift silently.
                    log.warning("migration %s changed after it was applied", name)
                continue
            async with connection.transaction():
                await connection.execute(sql)
                await connection.execute(
                    "INSERT INTO schema_migrations (name, checksum) VALUES ($1, $2)",
                    name,
                    checksum,
                )
            log.info("applied migration %s", name)
            applied_now.append(name)
    finally:
        await connection.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK_ID)
    return applied_now
