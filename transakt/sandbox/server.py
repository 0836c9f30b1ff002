"""The sandbox bank's aiohttp application: factory, error mapping, and a blocking runner."""

from __future__ import annotations

import asyncio
import logging
import math
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
from aiohttp import web
from aiohttp.typedefs import Middleware

from transakt.bankapi.constants import VERIFICATION_TTL_SECONDS
from transakt.bankapi.faults import Faults
from transakt.config import Settings
from transakt.errors import BankUnavailable, DomainError, RateLimited
from transakt.loop import run as run_loop
from transakt.sandbox.auth import service_auth_middleware
from transakt.sandbox.cache import AccountDirectory
from transakt.sandbox.errors import HolderUnauthorized
from transakt.sandbox.faults import FaultInjector
from transakt.sandbox.metrics import BankMetrics
from transakt.sandbox.migrations import migrate
from transakt.sandbox.online import PasscodeThrottle
from transakt.sandbox.store import BankStore
from transakt.sandbox.views import (
    DIRECTORY_KEY,
    FAULTS_KEY,
    METRICS_KEY,
    STORE_KEY,
    THROTTLE_KEY,
    VERIFICATION_TTL_KEY,
    routes,
)

__all__ = ["create_app", "run"]

log = logging.getLogger("transakt.bank")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# The one place where the bank turns its errors into status codes.
_STATUS_BY_CODE = {
    "validation_error": 422,
    "idempotency_key_reused": 422,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "account_exists": 409,
    "name_mismatch": 422,
    "rate_limited": 429,
    "bank_unavailable": 503,
}
# How online banking asks for the holder's account number and passcode.
_BASIC_CHALLENGE = 'Basic realm="sandbox bank"'
_DATABASE_DOWN = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
)
_CODE_BY_HTTP_STATUS = {
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
}


def _error(status: int, code: str, message: str, **details: Any) -> web.Response:
    return web.json_response(
        {"error": {"code": code, "message": message, **details}}, status=status
    )


def _error_middleware(metrics: BankMetrics) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except DomainError as error:
            details = dict(error.details)
            if isinstance(error, RateLimited):
                retry_after = max(1, math.ceil(error.retry_after))
                details.update(retry_after=retry_after, limit=error.limit, window=error.window)
            response = _error(
                _STATUS_BY_CODE.get(error.code, 400), error.code, error.message, **details
            )
            if isinstance(error, BankUnavailable):
                response.headers["Retry-After"] = str(max(1, round(error.retry_after)))
            elif isinstance(error, RateLimited):
                response.headers["Retry-After"] = str(details["retry_after"])
            elif isinstance(error, HolderUnauthorized):
                response.headers["WWW-Authenticate"] = _BASIC_CHALLENGE
        except web.HTTPException as error:
            # Router answers (unknown path, wrong method, oversized body) in the same shape.
            code = _CODE_BY_HTTP_STATUS.get(error.status, "http_error")
            response = _error(error.status, code, error.reason)
            if error.status == 405 and "Allow" in error.headers:
                response.headers["Allow"] = error.headers["Allow"]
        except _DATABASE_DOWN as error:
            # The bank's own database is away: a transient 503, which callers retry.
            log.warning("bank database unavailable: %r", error)
            response = _error(503, "bank_unavailable", "the bank's database is unavailable")
            response.headers["Retry-After"] = "1"
        except Exception:
            # Never a traceback to the caller: the detail goes to the log only.
            log.exception("unexpected error in %s %s", request.method, request.path)
            response = _error(500, "internal_error", "internal error")
        metrics.count_response(response.status)
        return response

    return middleware


def create_app(
    settings: Settings,
    database_url: str,
    *,
    faults: Faults | None = None,
    cache_size: int = 4096,
    cache_ttl: float = 300.0,
    verification_ttl: float = VERIFICATION_TTL_SECONDS,
) -> web.Application:
    """Build the sandbox bank's application; the database is opened when the app starts.

    ``verification_ttl`` is how long, in seconds, an account verification may be confirmed.
    """
    if not verification_ttl > 0:
        raise ValueError(f"verification_ttl must be positive: {verification_ttl!r}")
    metrics = BankMetrics()
    injector = FaultInjector(faults)
    secret = settings.bank.service_secret.get_secret_value()
    schema = settings.bank.schema_
    # Outermost first: errors wrap everything; faults come before auth, as a bank that is
    # down answers nobody.
    app = web.Application(
        middlewares=[
            _error_middleware(metrics),
            injector.middleware(),
            service_auth_middleware(secret),
        ]
    )
    app[METRICS_KEY] = metrics
    app[FAULTS_KEY] = injector
    app[THROTTLE_KEY] = PasscodeThrottle()
    app[VERIFICATION_TTL_KEY] = float(verification_ttl)
    app.add_routes(routes)

    async def database(app: web.Application) -> AsyncIterator[None]:
        pool = await asyncpg.create_pool(
            database_url,
            min_size=1,
            max_size=settings.database.pool_max,
            server_settings={"application_name": "transakt-bank"},
        )
        try:
            async with pool.acquire() as connection:
                applied = await migrate(connection, schema)
            if applied:
                log.info("bank schema %s migrated to version %s", schema, applied[-1])
            store = BankStore(pool, schema)
            directory = AccountDirectory(store, maxsize=cache_size, ttl=cache_ttl)
            app[STORE_KEY] = store
            app[DIRECTORY_KEY] = directory
            yield
            await directory.close()
        finally:
            await pool.close()

    app.cleanup_ctx.append(database)
    return app


def run(settings: Settings, database_url: str) -> None:
    """Serve the bank on settings.bank.host:bank_port until SIGINT or SIGTERM (blocking)."""
    run_loop(_serve(settings, database_url), settings.event_loop)


async def _serve(settings: Settings, database_url: str) -> None:
    faults = Faults(
        latency_ms=settings.bank.fault_latency_ms,
        failure_rate=settings.bank.fault_failure_rate,
        refuse_all=settings.bank.fault_refuse_all,
        seed=settings.bank.fault_seed,
    )
    app = create_app(
        settings,
        database_url,
        faults=faults,
        cache_size=settings.bank.cache_size,
        cache_ttl=settings.bank.cache_ttl_seconds,
    )
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.bank.host, settings.bank.port)
        await site.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        # With port 0 the OS picks the port; say which one, so a parent process can connect.
        for host, port, *_ in runner.addresses:
            shown = f"[{host}]" if ":" in host else host
            print(f"transakt bank listening on http://{shown}:{port}", flush=True)
        await stop.wait()
    finally:
        await runner.cleanup()
