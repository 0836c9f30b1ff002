"""The asyncpg connection pool, with JSON codecs set on every connection."""

from __future__ import annotations

import asyncpg
import orjson


def _encode(value: object) -> str:
    return orjson.dumps(value).decode()


async def _init_connection(connection: asyncpg.Connection) -> None:
    # orjson: the outbox relay decodes every event it reads back, and stdlib json was ~10% of
    # a node's CPU under load.
    for type_name in ("json", "jsonb"):
        await connection.set_type_codec(
            type_name, encoder=_encode, decoder=orjson.loads, schema="pg_catalog"
        )


async def create_pool(
    dsn: str, *, min_size: int = 2, max_size: int = 10, application_name: str | None = None
) -> asyncpg.Pool:
    """Open a pool whose connections encode and decode json/jsonb as Python objects."""
    # A name shows in pg_stat_activity, so operators can tell a component's connections apart.
    settings = {"application_name": application_name} if application_name else None
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        command_timeout=30,
        server_settings=settings,
    )
    assert pool is not None
    return pool
