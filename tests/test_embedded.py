"""The embedded PostgreSQL and Redis: real servers that keep their data across restarts."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from transakt.cli import embedded
from transakt.cli.embedded import (
    EmbeddedError,
    EmbeddedUnavailable,
    resolved_services,
    services,
    start_embedded_postgres,
    start_embedded_redis,
    start_services,
)
from transakt.config import ResolvedServices, Settings

PROD_SECRETS: dict[str, Any] = {
    "mode": "prod",
    "jwt_secret": "a-production-secret-of-more-than-32-characters",
    "bank_service_secret": "another-production-secret-for-the-bank-calls",
}


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


def _untouched(data_dir: Path) -> bool:
    """True while nothing was created under the data directory."""
    return not any(data_dir.iterdir())


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


def test_the_blocking_resolver_uses_configured_urls(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        database_url="postgresql://user@db.example/transakt",
        redis_url="redis://cache.example:6379/0",
    )
    with resolved_services(settings) as resolved:
        assert resolved == ResolvedServices(
            database_url="postgresql://user@db.example/transakt",
            redis_url="redis://cache.example:6379/0",
        )
    assert _untouched(tmp_path), "nothing may start for configured URLs"


def test_a_failed_redis_start_stops_the_postgres_it_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(data_dir: Path) -> embedded.EmbeddedServer:
        raise EmbeddedError("redis-server refused to start: test")

    monkeypatch.setattr(embedded, "start_embedded_redis", refuse)
    settings = Settings(data_dir=tmp_path, database_url=None, redis_url=None)
    with pytest.raises(EmbeddedError, match="refused to start"):
        start_services(settings)
    assert not _postmaster_running(tmp_path), "PostgreSQL left running after a failed start"


@pytest.mark.parametrize(
    ("urls", "named"),
    [
        ({"database_url": None, "redis_url": None}, "TRANSAKT_DATABASE_URL and TRANSAKT_REDIS_URL"),
        ({"database_url": "postgresql://db.example/t", "redis_url": None}, "TRANSAKT_REDIS_URL"),
    ],
)
def test_prod_mode_never_starts_an_embedded_server(
    tmp_path: Path, urls: dict[str, Any], named: str
) -> None:
    settings = Settings(data_dir=tmp_path, **PROD_SECRETS, **urls)
    with pytest.raises(EmbeddedUnavailable, match=f"prod mode .*: set {named}$"):
        start_services(settings)
    assert _untouched(tmp_path)


async def test_prod_mode_refuses_before_the_async_resolver_starts_anything(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, **PROD_SECRETS, database_url=None, redis_url=None)
    with pytest.raises(EmbeddedUnavailable, match="prod mode"):
        async with services(settings):
            pass
    assert _untouched(tmp_path)


def test_without_the_embedded_extra_the_refusal_names_the_extra_and_the_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As if pgserver were not installed: its import fails, and nothing of it (nor the launcher
    # that imports it) is cached from earlier tests.
    for name in list(sys.modules):
        if name.startswith(("pgserver.", "transakt.cli.embedded._postgres")):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "pgserver", None)
    settings = Settings(data_dir=tmp_path, database_url=None, redis_url="redis://r.example/0")
    with pytest.raises(EmbeddedUnavailable) as refused:
        start_services(settings)
    message = str(refused.value)
    assert "transakt[embedded]" in message and "TRANSAKT_DATABASE_URL" in message
    assert _untouched(tmp_path)
