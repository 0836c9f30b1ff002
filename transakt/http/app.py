"""The application factory and the blocking runner of the wallet service's HTTP front door."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from transakt.composition.node import open_node
from transakt.config import ResolvedServices, Settings
from transakt.http.keys import NODE_KEY, SETTINGS_KEY
from transakt.http.metrics import HTTP_METRICS_KEY, HttpMetrics, join_node_registry
from transakt.http.middlewares import front_door
from transakt.http.openapi import OPENAPI_KEY, build_openapi
from transakt.http.routes import setup_routes
from transakt.http.views.live import close_live_connections
from transakt.loop import run as run_loop
from transakt.web.headers import AccessLogger
from transakt.web.json import MAX_LARGE_BODY_BYTES, dumps
from transakt.web.server import serve

__all__ = ["create_app", "run"]

logger = logging.getLogger("transakt.http")

# Seconds that in-flight requests get to finish after SIGTERM/SIGINT before connections close.
_SHUTDOWN_TIMEOUT = 15.0


def create_app(settings: Settings, services: ResolvedServices) -> web.Application:
    """Build the wallet service's aiohttp application; the node opens on startup."""
    metrics = HttpMetrics()
    app = web.Application(
        # One layer: request id, metrics, errors, authentication and headers (see front_door).
        middlewares=[front_door(metrics)],
        client_max_size=MAX_LARGE_BODY_BYTES,  # each endpoint narrows it (read_json_object)
    )
    app[SETTINGS_KEY] = settings
    app[HTTP_METRICS_KEY] = metrics
    # The process's registry is the node's: the HTTP series join it once the node is open.
    app.on_startup.append(join_node_registry)
    app[OPENAPI_KEY] = dumps(build_openapi(settings)).encode()
    setup_routes(app)
    app.on_shutdown.append(close_live_connections)  # open websockets must not delay it

    async def node_context(app: web.Application) -> AsyncIterator[None]:
        # Every resource (pools, Redis, actor system) is opened and closed by the node, here.
        async with open_node(settings, services) as node:
            app[NODE_KEY] = node
            yield

    app.cleanup_ctx.append(node_context)
    return app


def run(settings: Settings, services: ResolvedServices) -> None:
    """Serve until SIGTERM or SIGINT, then finish in-flight requests and close the node."""
    app = create_app(settings, services)
    # transakt.loop.run tunes the collector (freezing the app just built, as run_app did not)
    # and runs on the configured loop: uvloop unless TRANSAKT_EVENT_LOOP says otherwise.
    run_loop(
        serve(
            app,
            settings.host,
            settings.port,
            shutdown_timeout=_SHUTDOWN_TIMEOUT,
            access_log_class=AccessLogger,
            access_log=logging.getLogger("transakt.http.access"),
            on_listening=lambda url: logger.info("wallet service listening on %s", url),
        ),
        settings.event_loop,
    )
