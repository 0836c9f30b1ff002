"""``transakt worker``: the e-mail side as its own process.

It opens a pool on the wallet database and runs ``mail_workers`` EmailActors and an outbox
relay (whose events wake them). Any number of worker processes, and nodes with
``mail_in_process``, share the mail through ``FOR UPDATE SKIP LOCKED``. SIGTERM or SIGINT stops
it cleanly: the batch being sent finishes or, past the grace time, its claims are released
with its database session (another worker takes them at its next poll).
"""

from __future__ import annotations

import asyncio
import logging
import signal

from transakt.composition.notifications import open_notifications
from transakt.config import ResolvedServices, Settings
from transakt.loop import run as run_loop
from transakt.runtime import ActorSystem
from transakt.storage.migrate import migrate

__all__ = ["run", "serve_worker"]

log = logging.getLogger("transakt.worker")


async def serve_worker(
    settings: Settings, database_url: str, stop: asyncio.Event | None = None
) -> None:
    """Run the mail workers until ``stop`` is set (or SIGTERM/SIGINT, when on the main thread)."""
    stop = stop if stop is not None else asyncio.Event()
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(signum, stop.set)
        except (NotImplementedError, RuntimeError, ValueError):
            continue  # not the main thread: the caller stops us through ``stop``
        handled.append(signum)
    try:
        await migrate(database_url)
        system = ActorSystem(f"transakt-worker-{settings.node_id}")
        await system.start()
        try:
            async with open_notifications(
                settings, database_url, system, live=False, mail=True
            ) as notifications:
                sink = notifications.transport
                log.info(
                    "mail worker running: %d mailer(s), mail to %s",
                    len(notifications.mailers),
                    sink.describe() if sink is not None else "nowhere",
                )
                await stop.wait()
                log.info("mail worker stopping")
        finally:
            await system.shutdown()
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)


def run(settings: Settings, services: ResolvedServices) -> None:
    """Run the mail worker against the configured database until SIGTERM or SIGINT."""
    run_loop(serve_worker(settings, services.database_url), settings.event_loop)
