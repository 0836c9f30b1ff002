"""The relay, live hub and mailers of a process, on a pool of their own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from transakt.config import Settings
from transakt.events.mail import MailTransport
from transakt.events.notifications import (
    Notifications,
    notifications_pool_size,
    start_notifications,
)
from transakt.runtime import ActorSystem
from transakt.storage.pool import create_pool

__all__ = ["open_notifications"]


@asynccontextmanager
async def open_notifications(
    settings: Settings,
    database_url: str,
    system: ActorSystem,
    *,
    live: bool,
    mail: bool,
    transport: MailTransport | None = None,
) -> AsyncIterator[Notifications]:
    """Open the notifications' own pool and start them on it; stop and close in reverse."""
    async with AsyncExitStack() as stack:
        # Connections of their own: relaying and mailing never wait for (or hold) one that an
        # HTTP request needs, and they show in pg_stat_activity under their own name.
        pool = await create_pool(
            database_url,
            min_size=1,
            max_size=notifications_pool_size(settings, mail=mail),
            application_name="transakt-notifications",
        )
        stack.push_async_callback(pool.close)
        yield await stack.enter_async_context(
            start_notifications(
                settings, pool, database_url, system, live=live, mail=mail, transport=transport
            )
        )
