"""The embedded PostgreSQL: the ``pgserver`` wheel's server, kept under ``DATA_DIR/postgres``.

Importing this module imports ``pgserver`` (the ``embedded`` extra); the package imports it only
when a server is actually needed, so ``pip install transakt`` works without it.
"""

from __future__ import annotations

import logging
import subprocess
import time
import warnings
from pathlib import Path
from urllib.parse import quote

from transakt.cli.embedded._common import (
    START_TIMEOUT_SECONDS,
    STOP_TIMEOUT_SECONDS,
    EmbeddedError,
    EmbeddedServer,
    add_holder,
    exclusive,
    held_server,
    pid_alive,
    prepare,
    process_name,
)

with warnings.catch_warnings():
    # pgserver computes a runtime directory at import time and platformdirs warns when
    # XDG_RUNTIME_DIR is unset (containers, CI); the warning is harmless but would become an
    # error under warnings-as-errors. Importing here, once, keeps the filter change off threads.
    warnings.simplefilter("ignore")
    from pgserver._commands import POSTGRES_BIN_PATH
    from pgserver.postgres_server import PostgresServer, get_server

__all__ = ["DATABASE_NAME", "start_embedded_postgres"]

log = logging.getLogger("transakt.cli.embedded")

DATABASE_NAME = "transakt"


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
    if pid_alive(pid):
        name = process_name(pid)
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
        command, capture_output=True, text=True, timeout=START_TIMEOUT_SECONDS, check=False
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
    command += ["-t", str(int(STOP_TIMEOUT_SECONDS)), "-m", "fast", "stop"]
    result = subprocess.run(
        command,
        user=server.system_user,  # pgserver runs the server as its own user when we are root
        capture_output=True,
        text=True,
        timeout=STOP_TIMEOUT_SECONDS + 5,
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
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
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
    data_dir = prepare(data_dir)
    pgdata = data_dir / "postgres"
    holders = data_dir / "postgres.holders"
    with exclusive(data_dir / "postgres.lock"):
        server, socket_dir = _run_postgres(pgdata)
        _ensure_database(socket_dir)
        add_holder(holders)
    log.info("embedded PostgreSQL ready in %s (socket in %s)", pgdata, socket_dir)

    url = f"postgresql://postgres@/{DATABASE_NAME}?host={quote(str(socket_dir), safe='/')}"
    return held_server(data_dir, "postgres", url, lambda: _stop_postgres(server, pgdata))
