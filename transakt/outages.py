"""What a lost or unreachable dependency looks like, named once for everyone who must handle it."""

from __future__ import annotations

from typing import Final

import asyncpg

__all__ = ["STORAGE_UNAVAILABLE"]

# Raised when the database is down, restarting, out of connections, or the connection drops
# mid-query: the request's outcome may be unknown, so callers answer "retry later" (503 with
# Retry-After), never "bad request" or a bare 500.
STORAGE_UNAVAILABLE: Final[tuple[type[BaseException], ...]] = (
    asyncpg.PostgresConnectionError,
    asyncpg.InternalClientError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    ConnectionError,
)
