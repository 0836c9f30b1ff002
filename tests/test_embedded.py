"""The embedded PostgreSQL and Redis: real servers that keep their data across restarts."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import asyncpg
import redis.asyncio as aioredis

from transakt.config import Settings
from transakt.storage.embedded import (
    ResolvedServices,
    services,
    start_embedded_postgres,
    start_embedded_redis,
)


def _dead_pid() -> int:
    """The pid of a process that has exited (stands in for a crashed holder)."""
    process = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(process.stdout)


def _postmaster_running(data_dir: Path) -> bool:
    return (data_dir / "postgres" / "postmaster.pid").exists()


def _redis_pid(data_dir: Path) -> int | None:
    try:
        return int((data_dir / "redis" / "redis.pid").read_text().strip())
    except (OSError, ValueError):
        return None


async def test_postgres_keeps_rows_across_restarts(tmp_path: Path) -> None:
    server = await asyncio.to_thread(start_embedded_postgres, tmp_path)
    try:
        assert server.url.startswith("postgresql://postgres@/transakt?host=")
        connection = await asyncpg.connect(server.url)
        try:
            await connection.execute("CREATE TABLE kept (id int PRIMARY KEY, note text)")
            await connection.execute("INSERT INTO kept VALUES (1, 'survives a restart')")
        finally:
            await connection.close()
    finally:
        await asyncio.to_thread(server.stop)
    assert not _postmaster_running(tmp_path)

    again = await asyncio.to_thread(start_embedded_postgres, tmp_path)
    try:
        connection = await asyncpg.connect(again.url)
        try:
            assert await connection.fetchval("SELECT note FROM kept WHERE id = 1") == (
                "survives a restart"
            )
            assert await connection.fetchval("SELECT current_database()") == "transakt"
        finally:
            await connection.close()
    finally:
        await asyncio.to_thread(again.stop)
    assert not _postmaster_running(tmp_path)


async def test_redis_keeps_keys_across_restarts(tmp_path: Path) -> None:
    server = await asyncio.to_thread(start_embedded_redis, tmp_path)
    try:
        assert server.url.startswith("unix://") and server.url.endswith("?db=0")
        client = aioredis.from_url(server.url)
        try:
            await client.set("kept", "survives a restart")
            await client.xadd("requests", {"id": "r-1"})
        finally:
            await client.aclose()
    finally:
        await asyncio.to_thread(server.stop)
    assert _redis_pid(tmp_path) is None

    again = await asyncio.to_thread(start_embedded_redis, tmp_path)
    try:
        client = aioredis.from_url(again.url)
        try:
            assert await client.get("kept") == b"survives a restart"
            assert await client.xlen("requests") == 1
        finally:
            await client.aclose()
    finally:
        await asyncio.to_thread(again.stop)


async def test_redis_restarts_after_being_killed(tmp_path: Path) -> None:
    server = await asyncio.to_thread(start_embedded_redis, tmp_path)
    client = aioredis.from_url(server.url)
    try:
        await client.set("written", "before the crash")
    finally:
        await client.aclose()
    pid = _redis_pid(tmp_path)
    assert pid is not None
    # The AOF write reaches the kernel before the reply, so only a power cut could lose it;
    # SIGKILL leaves a stale pid file and socket behind for the next start to clear.
    os.kill(pid, signal.SIGKILL)

    again = await asyncio.to_thread(start_embedded_redis, tmp_path)
    try:
        client = aioredis.from_url(again.url)
        try:
            assert await client.get("written") == b"before the crash"
        finally:
            await client.aclose()
        assert _redis_pid(tmp_path) not in (None, pid)
    finally:
        await asyncio.to_thread(server.stop)  # the first handle still counts as a holder
        await asyncio.to_thread(again.stop)
    assert _redis_pid(tmp_path) is None


async def test_a_server_stops_with_its_last_live_holder(tmp_path: Path) -> None:
    first = await asyncio.to_thread(start_embedded_postgres, tmp_path)
    second = await asyncio.to_thread(start_embedded_postgres, tmp_path)
    assert first.url == second.url
    await asyncio.to_thread(first.stop)
    assert _postmaster_running(tmp_path), "stopped under a holder that still uses it"
    await asyncio.to_thread(second.stop)
    assert not _postmaster_running(tmp_path)


async def test_a_server_orphaned_by_a_crash_is_joined_and_then_stopped(tmp_path: Path) -> None:
    orphaned = await asyncio.to_thread(start_embedded_postgres, tmp_path)
    # As if the process that started it had died without stopping it.
    (tmp_path / "postgres.holders").write_text(json.dumps([_dead_pid()]))
    orphaned._release = None

    joined = await asyncio.to_thread(start_embedded_postgres, tmp_path)
    assert joined.url == orphaned.url
    connection = await asyncpg.connect(joined.url)
    await connection.close()
    await asyncio.to_thread(joined.stop)
    assert not _postmaster_running(tmp_path)


async def test_services_uses_configured_urls_without_starting_anything(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        database_url="postgresql://user@db.example/transakt",
        redis_url="redis://cache.example:6379/0",
    )
    async with services(settings) as resolved:
        assert resolved == ResolvedServices(
            database_url="postgresql://user@db.example/transakt",
            redis_url="redis://cache.example:6379/0",
        )
    assert not (tmp_path / "postgres").exists()
    assert not (tmp_path / "redis").exists()


async def test_services_starts_and_stops_embedded_servers(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url=None, redis_url=None)
    async with services(settings) as resolved:
        connection = await asyncpg.connect(resolved.database_url)
        try:
            assert await connection.fetchval("SELECT 1") == 1
        finally:
            await connection.close()
        client = aioredis.from_url(resolved.redis_url)
        try:
            assert await client.ping()
        finally:
            await client.aclose()
    assert not _postmaster_running(tmp_path)
    assert _redis_pid(tmp_path) is None
