"""The sandbox bank's aiohttp application: factory, error mapping, and a blocking runner."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
from aiohttp import web
from aiohttp.typedefs import Middleware

from transakt.bankapi.constants import VERIFICATION_TTL_SECONDS
from transakt.bankapi.faults import Faults
from transakt.bankapi.modes import faults_for, mode_of
from transakt.composition.bank import open_bank
from transakt.config.settings import BankSettings
from transakt.errors import BankUnavailable, DomainError, RateLimited
from transakt.loop import EventLoopChoice
from transakt.loop import run as run_loop
from transakt.sandbox.auth import service_auth_middleware
from transakt.sandbox.demo import seed_demo_accounts
from transakt.sandbox.errors import HolderUnauthorized
from transakt.sandbox.faults import FaultInjector
from transakt.sandbox.metrics import BankMetrics
from transakt.sandbox.online import PasscodeThrottle
from transakt.sandbox.views import (
    DIRECTORY_KEY,
    FAULTS_KEY,
    METRICS_KEY,
    STORE_KEY,
    THROTTLE_KEY,
    VERIFICATION_TTL_KEY,
    routes,
)
from transakt.web.errors import error_response, retry_after_seconds
from transakt.web.server import serve

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


def _error_middleware(metrics: BankMetrics) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except DomainError as error:
            details = dict(error.details)
            headers: dict[str, str] = {}
            if isinstance(error, RateLimited | BankUnavailable):
                headers["Retry-After"] = str(retry_after_seconds(error.retry_after))
            if isinstance(error, RateLimited):
                details.update(
                    retry_after=retry_after_seconds(error.retry_after),
                    limit=error.limit,
                    window=error.window,
                )
            elif isinstance(error, HolderUnauthorized):
                headers["WWW-Authenticate"] = _BASIC_CHALLENGE
            status = _STATUS_BY_CODE.get(error.code, 400)
            response = error_response(
                status, error.code, error.message, details=details, headers=headers
            )
        except web.HTTPException as error:
            # Router answers (unknown path, wrong method, oversized body) in the same shape.
            code = _CODE_BY_HTTP_STATUS.get(error.status, "http_error")
            allow = {"Allow": error.headers["Allow"]} if "Allow" in error.headers else {}
            response = error_response(error.status, code, error.reason, headers=allow)
        except _DATABASE_DOWN as error:
            # The bank's own database is away: a transient 503, which callers retry.
            log.warning("bank database unavailable: %r", error)
            response = error_response(
                503,
                "bank_unavailable",
                "the bank's database is unavailable",
                headers={"Retry-After": "1"},
            )
        except Exception:
            # Never a traceback to the caller: the detail goes to the log only.
            log.exception("unexpected error in %s %s", request.method, request.path)
            response = error_response(500, "internal_error", "internal error")
        metrics.count_response(response.status)
        return response

    return middleware


def create_app(
    bank: BankSettings,
    database_url: str,
    *,
    pool_max: int = 10,
    faults: Faults | None = None,
    verification_ttl: float = VERIFICATION_TTL_SECONDS,
) -> web.Application:
    """Build the sandbox bank's application from its own settings section; the database is
    opened when the app starts (``transakt.composition.bank``).

    ``faults`` default to the ones ``bank`` starts with; ``verification_ttl`` is how long, in
    seconds, an account verification may be confirmed.
    """
    if not verification_ttl > 0:
        raise ValueError(f"verification_ttl must be positive: {verification_ttl!r}")
    if faults is None:
        faults = Faults(
            latency_ms=bank.fault_latency_ms,
            failure_rate=bank.fault_failure_rate,
            refuse_all=bank.fault_refuse_all,
            seed=bank.fault_seed,
        )
        if bank.mode != "normal":
            faults = faults_for(bank.mode, faults)
    metrics = BankMetrics()
    injector = FaultInjector(faults)
    # Outermost first: errors wrap everything; faults come before auth, as a bank that is
    # down answers nobody.
    app = web.Application(
        middlewares=[
            _error_middleware(metrics),
            injector.middleware(),
            service_auth_middleware(bank.service_secret.get_secret_value()),
        ]
    )
    app[METRICS_KEY] = metrics
    app[FAULTS_KEY] = injector
    app[THROTTLE_KEY] = PasscodeThrottle()
    app[VERIFICATION_TTL_KEY] = float(verification_ttl)
    app.add_routes(routes)

    async def resources(app: web.Application) -> AsyncIterator[None]:
        async with open_bank(bank, database_url, pool_max=pool_max) as parts:
            app[STORE_KEY] = parts.store
            app[DIRECTORY_KEY] = parts.directory
            if bank.demo_accounts:
                await seed_demo_accounts(parts.store)
            yield

    app.cleanup_ctx.append(resources)
    return app


def run(
    bank: BankSettings,
    database_url: str,
    *,
    event_loop: EventLoopChoice = "auto",
    pool_max: int = 10,
) -> None:
    """Serve the bank on ``bank.host:bank.port`` until SIGINT or SIGTERM (blocking)."""
    run_loop(_serve(bank, database_url, pool_max), event_loop)


async def _serve(bank: BankSettings, database_url: str, pool_max: int) -> None:
    app = create_app(bank, database_url, pool_max=pool_max)
    mode = mode_of(app[FAULTS_KEY].faults)

    def listening(url: str) -> None:
        # With port 0 the OS picks the port; say which one, so a parent process can connect.
        shown = "" if mode == "normal" else f" (outage mode: {mode})"
        print(f"transakt bank listening on {url}{shown}", flush=True)

    await serve(app, bank.host, bank.port, access_log=None, on_listening=listening)
