"""Databases of a test's own on the session's PostgreSQL server: created, migrated, dropped."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from transakt.storage.migrate import migrate


def with_database(url: str, name: str) -> str:
    """``url`` naming the database ``name`` instead."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


@asynccontextmanager
async def own_database(
    server_url: str, prefix: str, *, migrated: bool = True
) -> AsyncIterator[str]:
    """A new database (``<prefix>_<random>``) on the server of ``server_url``, migrated unless
    told not to; dropped at the end, its connections cut first."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = with_database(server_url, name)
    try:
        if migrated:
            await migrate(url)
        yield url
    finally:
        admin = await asyncpg.connect(server_url)
        try:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
            )
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        finally:
            await admin.close()
