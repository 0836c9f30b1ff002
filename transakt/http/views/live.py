"""GET /api/v1/live: the websocket feed of a user's balances and transfers.

The auth middleware has checked the token (bearer header or ``?token=``) before the upgrade, so
a bad token is an ordinary 401. Once open, the websocket gets the user's wallets as ``balance``
messages, then every ``balance`` and ``transfer`` message about their wallets as it happens.
Close codes: 4001 when the token expires or its session ends (logout, password change), 4008
when the client does not keep up (reconnect for a fresh snapshot), 1001 when the server shuts
down.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket as stdlib_socket
import time
from typing import Any, Final

from aiohttp import WSMsgType, web

from transakt.errors import Overloaded, ValidationFailed
from transakt.events.live import (
    CLOSE_TOKEN_EXPIRED,
    LiveConnection,
    TransactionSnapshot,
    wallet_message,
)
from transakt.http.auth import current_claims
from transakt.http.keys import NODE_KEY, SETTINGS_KEY
from transakt.http.middlewares import apply_security_headers

__all__ = ["close_live_connections", "live"]

# How long a closing handshake may take before the connection is cut.
_CLOSE_TIMEOUT_SECONDS: Final = 2.0
# Clients only answer pings and close frames: anything big from them is a mistake or abuse.
_MAX_CLIENT_MESSAGE: Final = 4096
# The kernel's send buffer per websocket, capped: a stuck client then holds little memory and
# fills its queue (and is dropped) soon, while 64 KiB per round trip is far more than a feed of
# small messages needs.
_SEND_BUFFER_BYTES: Final = 64 * 1024


async def live(request: web.Request) -> web.StreamResponse:
    """Upgrade to a websocket and stream the user's live events until one side closes."""
    claims = current_claims(request)
    user_id = claims.user_id
    expires_at = float(claims.expires_at)
    node = request.app[NODE_KEY]
    hub = node.notifications.live if node.notifications is not None else None
    if hub is None:
        raise Overloaded("the live feed is not running on this node", retry_after=5.0)
    websocket = web.WebSocketResponse(
        heartbeat=request.app[SETTINGS_KEY].live.heartbeat_seconds,
        timeout=_CLOSE_TIMEOUT_SECONDS,
        max_msg_size=_MAX_CLIENT_MESSAGE,
        # Messages are a few hundred bytes: compressing each costs more CPU than it saves.
        compress=False,
    )
    if not websocket.can_prepare(request).ok:
        raise ValidationFailed("this endpoint speaks websocket only (send an Upgrade request)")
    # Registered before the snapshot is read, so nothing committed in between is missed.
    connection = hub.connect(user_id)
    ended = node.sessions.watch(user_id, claims.jti, claims.version)
    tasks: list[asyncio.Task[Any]] = []
    try:
        _cap_send_buffer(request)
        apply_security_headers(request, websocket)  # prepared here, not by the middleware
        await websocket.prepare(request)
        snapshot, wallets = await node.service.live_snapshot(user_id)
        connection.begin(
            TransactionSnapshot.parse(snapshot),
            [wallet_message(wallet.to_json()) for wallet in wallets],
        )
        tasks = [
            asyncio.create_task(_read(websocket)),
            asyncio.create_task(_write(websocket, connection)),
            asyncio.create_task(connection.dropped.wait()),
            asyncio.create_task(ended.wait()),
        ]
        remaining = expires_at - time.time()
        done, _pending = await asyncio.wait(
            tasks, timeout=max(remaining, 0.0), return_when=asyncio.FIRST_COMPLETED
        )
        if not done:
            connection.drop(CLOSE_TOKEN_EXPIRED, "token expired: log in again")
        elif ended.is_set():
            connection.drop(CLOSE_TOKEN_EXPIRED, "session ended: log in again")
    finally:
        node.sessions.unwatch(user_id, ended)
        hub.disconnect(connection)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    if connection.close_code is not None:
        await _close(request, websocket, connection.close_code, connection.close_reason)
    return websocket


def _cap_send_buffer(request: web.Request) -> None:
    """Cap the connection's kernel send buffer (see _SEND_BUFFER_BYTES)."""
    transport = request.transport
    raw = transport.get_extra_info("socket") if transport is not None else None
    if raw is not None:
        with contextlib.suppress(OSError):
            raw.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_SNDBUF, _SEND_BUFFER_BYTES)


async def _read(websocket: web.WebSocketResponse) -> None:
    # Clients have nothing to say; reading keeps pings, pongs and the close handshake going.
    async for message in websocket:
        if message.type is WSMsgType.ERROR:
            return


async def _write(websocket: web.WebSocketResponse, connection: LiveConnection) -> None:
    while True:
        for message in await connection.take():
            await websocket.send_str(message)
            connection.sent += 1


async def _close(
    request: web.Request, websocket: web.WebSocketResponse, code: int, reason: str
) -> None:
    """Close with ``code``; cut the connection if the client cannot even take the close frame."""
    if not websocket.closed:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(_CLOSE_TIMEOUT_SECONDS + 1.0):
                await websocket.close(code=code, message=reason.encode(), drain=False)
    transport = request.transport
    if transport is not None and transport.get_write_buffer_size() > 0:
        # A stuck client never reads what is buffered for it; a graceful close would wait
        # for it forever. Abort drops the buffer and frees the socket now.
        transport.abort()


async def close_live_connections(app: web.Application) -> None:
    """on_shutdown: ask every live websocket to close, so shutdown does not wait on them."""
    node = app.get(NODE_KEY)
    if node is not None and node.notifications is not None and node.notifications.live:
        node.notifications.live.close_all()
