"""The sandbox bank's outage mode (dev mode only): ``GET|PUT /api/v1/sandbox/bank``.

The routes exist only on a node in ``TRANSAKT_MODE=dev`` (:func:`setup_sandbox_routes`); in
prod the path is unknown, 404 ``not_found`` like any other. Signed-in users only, throttled.
"""

from __future__ import annotations

from typing import Any, Final, cast

from aiohttp import web

from transakt.bankapi.modes import MODES, BankMode
from transakt.errors import ValidationFailed
from transakt.http.auth import current_user_id
from transakt.http.constants import API_PREFIX
from transakt.http.keys import NODE_KEY, SETTINGS_KEY
from transakt.services.sandbox import SandboxBank
from transakt.web.json import json_response, read_json_object

__all__ = ["MAX_SLOW_LATENCY_MS", "SANDBOX_BANK_PATH", "setup_sandbox_routes"]

SANDBOX_BANK_PATH: Final = f"{API_PREFIX}/sandbox/bank"
#: The most a caller may make the slow mode wait per call (a minute).
MAX_SLOW_LATENCY_MS: Final = 60_000

_SANDBOX_KEY: Final = web.AppKey("sandbox_bank", SandboxBank)


def setup_sandbox_routes(app: web.Application) -> None:
    """Add the sandbox routes when the node runs in dev mode; in prod they do not exist."""
    if app[SETTINGS_KEY].mode != "dev":
        return
    app[_SANDBOX_KEY] = SandboxBank()
    app.router.add_get(SANDBOX_BANK_PATH, get_sandbox_bank, name="get_sandbox_bank")
    app.router.add_put(SANDBOX_BANK_PATH, put_sandbox_bank, name="put_sandbox_bank")


async def get_sandbox_bank(request: web.Request) -> web.Response:
    """GET /api/v1/sandbox/bank: ``{"mode", "latency_ms"}`` of the sandbox bank now."""
    current_user_id(request)  # signed in (the middleware checked the token)
    state = await request.app[_SANDBOX_KEY].state(request.app[NODE_KEY].bank)
    return json_response(state.to_json())


async def put_sandbox_bank(request: web.Request) -> web.Response:
    """PUT /api/v1/sandbox/bank ``{"mode", "latency_ms"?}``: switch the bank's outage mode.

    ``latency_ms`` is the slow mode's delay (0 or absent: the default); other modes ignore it,
    so a client may send back what GET answered with only the mode changed.
    """
    user_id = current_user_id(request)
    mode, latency_ms = _parse(await read_json_object(request))
    app = request.app
    state = await app[_SANDBOX_KEY].switch(app[NODE_KEY].bank, user_id, mode, latency_ms)
    return json_response(state.to_json())


def _parse(body: dict[str, Any]) -> tuple[BankMode, int | None]:
    unknown = sorted(set(body) - {"mode", "latency_ms"})
    if unknown:
        raise ValidationFailed(
            f"{unknown[0]}: unknown field", fields=dict.fromkeys(unknown, "unknown field")
        )
    mode = body.get("mode")
    if mode not in MODES:
        message = f"must be one of {', '.join(MODES)}"
        raise ValidationFailed(f"mode: {message}", fields={"mode": message})
    latency = body.get("latency_ms")
    if latency is None:
        return cast(BankMode, mode), None
    valid = isinstance(latency, int) and not isinstance(latency, bool)
    if not valid or not 0 <= latency <= MAX_SLOW_LATENCY_MS:
        message = f"must be an integer from 0 to {MAX_SLOW_LATENCY_MS}"
        raise ValidationFailed(f"latency_ms: {message}", fields={"latency_ms": message})
    # Only the slow mode delays; the other modes take a GET's answer back as it was.
    return cast(BankMode, mode), (latency or None) if mode == "slow" else None
