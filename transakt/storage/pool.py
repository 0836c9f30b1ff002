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


class _StatelessConnection(asyncpg.Connection):
    """A pooled connection that needs no reset query when it goes back to the pool.

    asyncpg's default reset (unlock advisory locks, close cursors, UNLISTEN, RESET ALL) costs a
    round trip on every release, as much as the query the connection was taken for. Nothing
    that borrows from these pools keeps session state: listeners and advisory locks live on
    connections of their own, settings are per transaction, cursors close with theirs. asyncpg
    still rolls back a transaction left open, and forgets listeners, on release.
    """

    def get_reset_query(self) -> str:
        """No reset statement (see the class)."""
        return ""


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
        connection_class=_StatelessConnection,
        command_timeout=30,
        server_settings=settings,
    )
    assert pool is not None
    return pool
