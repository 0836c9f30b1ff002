"""What both launchers share: the errors, the server handle, and the cross-process bookkeeping.

Several processes may share one data directory (``transakt up`` and its children, or two shells).
Each start records the caller's pid in a holders file; ``stop()`` removes it and shuts the server
down only when no live holder is left, so one process never pulls a database from under another,
and a server orphaned by a crash is stopped by the next clean exit.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "START_TIMEOUT_SECONDS",
    "STOP_TIMEOUT_SECONDS",
    "EmbeddedError",
    "EmbeddedServer",
    "EmbeddedUnavailable",
    "add_holder",
    "exclusive",
    "missing_extra",
    "pid_alive",
    "prepare",
    "process_name",
    "remove_holder",
]

START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 15.0


class EmbeddedError(RuntimeError):
    """An embedded server could not be started or stopped; the message says where to look."""


class EmbeddedUnavailable(EmbeddedError):
    """No embedded server may run here: its extra is not installed, or prod mode forbids it.

    Unlike a failed start, the user has to act (install ``transakt[embedded]`` or set the URL).
    """


def missing_extra(server: str, variable: str) -> EmbeddedUnavailable:
    """The one-line refusal when the ``embedded`` extra that ships a server is not installed."""
    return EmbeddedUnavailable(
        f"the embedded {server} is not installed: install transakt[embedded] "
        f"(pip install 'transakt[embedded]') or set {variable}"
    )


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
def exclusive(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive lock across processes and threads (starts and stops never interleave)."""
    with _thread_lock, lock_file.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def pid_alive(pid: int) -> bool:
    """True while the process runs (a zombie counts as gone)."""
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


def process_name(pid: int) -> str:
    """The process's command name, or "" where it cannot be read."""
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
    return [pid for pid in raw if isinstance(pid, int) and pid_alive(pid)]


def _write_holders(path: Path, pids: list[int]) -> None:
    path.write_text(json.dumps(pids), encoding="utf-8")


def add_holder(path: Path) -> None:
    """Record this process as one more holder of the server."""
    # One entry per start, so one process may hold a server twice and must stop it twice.
    _write_holders(path, [*_read_holders(path), os.getpid()])


def remove_holder(path: Path) -> list[int]:
    """Drop one entry of this process; return the live holders left."""
    pids = _read_holders(path)
    with contextlib.suppress(ValueError):
        pids.remove(os.getpid())
    _write_holders(path, pids)
    return pids


def prepare(data_dir: Path) -> Path:
    """The data directory, absolute and created."""
    data_dir = data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    return data_dir


def held_server(data_dir: Path, name: str, url: str, stop: Callable[[], None]) -> EmbeddedServer:
    """The server this process now holds: releasing it stops it once no process holds it."""
    holders = data_dir / f"{name}.holders"

    def release() -> None:
        with exclusive(data_dir / f"{name}.lock"):
            if not remove_holder(holders):
                stop()

    return EmbeddedServer(url=url, name=name, _release=release)
