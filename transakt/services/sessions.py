"""Sessions that can end: logout revokes a token, a password change revokes all of a user's.

An access token is a signed JWT, checked without a database round trip; ending one early needs
a list. Logged-out tokens are kept by ``jti`` in ``revoked_tokens`` until they would have
expired anyway, and every user has a ``token_version`` that each token carries (``ver``): a
password change bumps it, so every token issued before stops at once. PostgreSQL holds both
durably; every node keeps them in memory (a set of a few ids, a map of the few users who ever
changed their password) so the check costs a dictionary look-up, and hears of changes made on
other nodes through NOTIFY within milliseconds. The listener runs under the sessions'
``TaskSupervisor`` (``sessions.tasks``): when its connection is lost it ends as a crash, and its
restart, with backoff, reconnects and reloads everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, Final

import asyncpg

from transakt.errors import Unauthorized
from transakt.runtime import RestartPolicy, TaskSupervisor
from transakt.storage import trust

__all__ = ["CHANNEL", "Sessions"]

log = logging.getLogger("transakt.sessions")

#: The NOTIFY channel of migration 0008's triggers: "jti <jti> <exp> <user>", "user <id> <ver>".
CHANNEL: Final = "transakt_sessions"

# The listener reconnects with backoff, for ever: backing off to 5 s, it cannot reach 100
# restarts within a minute, however long the database is away.
_RESTARTS: Final = RestartPolicy(max_restarts=100, within=60.0, min_backoff=0.05, max_backoff=5.0)


class Sessions:
    """Which tokens were ended early, kept in memory and in step with every other node."""

    def __init__(self, pool: asyncpg.Pool, database_url: str) -> None:
        self._pool = pool
        self._database_url = database_url
        self._revoked: dict[str, float] = {}  # jti -> its expiry (epoch seconds)
        self._versions: dict[str, int] = {}  # user -> token version, for users above 0
        # Open websockets wait on these: user -> {event: (jti, version)}, set when they end.
        self._watchers: dict[str, dict[asyncio.Event, tuple[str, int]]] = {}
        #: The listener: restarted (reconnecting) when it crashes, cancelled by ``stop()``.
        self.tasks = TaskSupervisor("sessions", restart=_RESTARTS)
        self._connection: asyncpg.Connection | None = None  # the listening connection
        self._lost = asyncio.Event()  # set when the listening connection is lost
        self.reloads = 0

    def __repr__(self) -> str:
        return f"<Sessions revoked={len(self._revoked)} versions={len(self._versions)}>"

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Load what is revoked and start listening; returns once the first load is done."""
        if self.tasks.closing:  # started again after a stop: a closed supervisor takes no tasks
            self.tasks = TaskSupervisor(self.tasks.name, restart=self.tasks.restart)
        await self._open()  # the first time in the foreground: a failed first load is raised
        self.tasks.spawn("sessions-listener", self._listen)

    async def stop(self) -> None:
        """Stop listening."""
        await self.tasks.close()
        await self._close()  # still open if the listener was stopped before it first ran

    # -- the check on every request ----------------------------------------------------------

    def check(self, user_id: str, jti: str, version: int) -> None:
        """Unauthorized if this token was logged out or predates a password change."""
        if jti in self._revoked or version < self._versions.get(user_id, 0):
            raise Unauthorized("this session has ended; log in again")

    def watch(self, user_id: str, jti: str, version: int) -> asyncio.Event:
        """An event set when this token ends (a long-lived connection closes on it)."""
        ended = asyncio.Event()
        self._watchers.setdefault(user_id, {})[ended] = (jti, version)
        return ended

    def unwatch(self, user_id: str, ended: asyncio.Event) -> None:
        """Stop watching a token (its connection closed)."""
        watching = self._watchers.get(user_id)
        if watching is not None:
            watching.pop(ended, None)
            if not watching:
                del self._watchers[user_id]

    def _wake(self, user_id: str) -> None:
        for ended, (jti, version) in self._watchers.get(user_id, {}).items():
            if jti in self._revoked or version < self._versions.get(user_id, 0):
                ended.set()

    @property
    def revoked_count(self) -> int:
        """Logged-out tokens held (until they would have expired)."""
        return len(self._revoked)

    def version_of(self, user_id: str) -> int:
        """The token version new tokens of this user carry (as this node last heard)."""
        return self._versions.get(user_id, 0)

    # -- changes -----------------------------------------------------------------------------

    async def revoke(self, user_id: str, jti: str, expires_at: float) -> None:
        """End one token now (logout); durable before this returns."""
        if expires_at <= time.time():
            return  # it has ended by itself
        await trust.revoke_token(self._pool, jti, user_id, expires_at)
        self._revoked[jti] = expires_at
        self._wake(user_id)

    def versioned(self, user_id: str, version: int) -> None:
        """Note a user's new token version (the caller committed it)."""
        if version > self._versions.get(user_id, 0):
            self._versions[user_id] = version
            self._wake(user_id)

    async def prune(self) -> int:
        """Forget tokens that have expired anyway; how many rows went."""
        now = time.time()
        for jti in [jti for jti, expiry in self._revoked.items() if expiry <= now]:
            del self._revoked[jti]
        return await trust.prune_revocations(self._pool)

    # -- keeping in step ---------------------------------------------------------------------

    def _heard(self, _connection: Any, _pid: int, _channel: str, payload: object) -> None:
        kind, subject, value, *user = str(payload).split(" ")
        try:
            if kind == "jti":
                self._revoked[subject] = float(value)
                if user:
                    self._wake(user[0])
            elif kind == "user":
                self.versioned(subject, int(value))
        except ValueError:
            log.warning("ignored a malformed sessions notification")

    async def _load(self, connection: asyncpg.Connection) -> None:
        revoked, versions = await trust.load_revocations(connection)
        self._revoked.update(revoked)
        for user_id, version in versions.items():
            self.versioned(user_id, version)
        # Tokens logged out while the connection was down end the connections watching them.
        for user_id in list(self._watchers):
            self._wake(user_id)
        self.reloads += 1

    async def _open(self) -> None:
        """Connect, listen, then load: a change committed in between is heard, not missed."""
        connection = await asyncpg.connect(
            self._database_url, server_settings={"application_name": "transakt-sessions"}
        )
        self._connection = connection
        self._lost.clear()
        connection.add_termination_listener(self._terminated)
        try:
            await connection.add_listener(CHANNEL, self._heard)
            await self._load(connection)
        except BaseException:
            await self._close()
            raise

    def _terminated(self, connection: Any) -> None:
        if connection is self._connection:
            self._lost.set()

    async def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()

    async def _listen(self) -> None:
        """Hear changes until the connection is lost, then crash: the restart reconnects."""
        try:
            if self._connection is None:  # a restart: connect and load what changed meanwhile
                await self._open()
            await self._lost.wait()
        finally:
            await self._close()
        raise ConnectionError("the sessions listener lost its connection")
