"""GET /api/v1/live with real websocket clients against a real wallet node."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient, TestServer
from httpkit import Api, Fund, MakeUser, Person

from live.conftest import DEADLINE_SECONDS, wait_until
from transakt.config import ResolvedServices, Settings
from transakt.http import create_app
from transakt.http.auth import issue_access_token
from transakt.http.keys import NODE_KEY

App = TestClient[web.Request, web.Application]
WALLET_FIELDS = {"id", "currency", "balance", "available", "pending_in", "pending_out"}


@contextlib.asynccontextmanager
async def live(app: App, token: str) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    """A websocket on the live feed, authenticated with ``?token=``."""
    async with app.ws_connect(f"/api/v1/live?token={token}") as websocket:
        yield websocket


async def next_message(websocket: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    """The next JSON message; fail on close or past the deadline."""
    message = await asyncio.wait_for(websocket.receive(), DEADLINE_SECONDS)
    assert message.type is WSMsgType.TEXT, (message.type, message.data, message.extra)
    data: dict[str, Any] = message.json()
    return data


async def until(
    websocket: aiohttp.ClientWebSocketResponse, done: Callable[[dict[str, Any]], bool]
) -> list[dict[str, Any]]:
    """Messages up to and including the first for which ``done`` is true."""
    seen = []
    while True:
        seen.append(await next_message(websocket))
        if done(seen[-1]):
            return seen


def balance_of(wallet_id: str, amount: int) -> Callable[[dict[str, Any]], bool]:
    """Matches the balance message showing ``wallet_id`` at ``amount``."""
    return lambda m: m["type"] == "balance" and m["wallet"] == {
        **m["wallet"], "id": wallet_id, "balance": amount
    }  # fmt: skip


async def pay(api: Api, payer: Person, payee: Person, amount: int, memo: str | None = None) -> str:
    """A P2P payment through the API; its transfer id."""
    body: dict[str, Any] = {
        "from_wallet": payer.wallet_id, "to_wallet": payee.wallet_id, "amount": amount,
        "currency": "EUR",
    }  # fmt: skip
    if memo is not None:
        body["memo"] = memo
    answer = await api.post("/api/v1/transfers", json=body, token=payer.token)
    assert answer.status == 201, answer.text
    return str(answer.body["id"])


async def test_a_client_sees_its_balance_change_and_another_user_sees_nothing_of_it(
    api: Api, make_user: MakeUser, fund: Fund, wallet_app: App
) -> None:
    alice = await make_user(balance=10_000, name="Alice")
    bob = await make_user(name="Bob")
    carol = await make_user(name="Carol")
    async with (
        live(wallet_app, alice.token) as a,
        live(wallet_app, bob.token) as b,
        live(wallet_app, carol.token) as c,
    ):
        # A snapshot first: each wallet, in the contract's shape and nothing more.
        first = await next_message(a)
        assert first == {"type": "balance", "wallet": {**first["wallet"], "balance": 10_000}}
        assert set(first["wallet"]) == WALLET_FIELDS and first["wallet"]["id"] == alice.wallet_id
        assert (await next_message(b))["wallet"]["balance"] == 0
        assert (await next_message(c))["wallet"]["id"] == carol.wallet_id

        payment = await pay(api, alice, bob, 2_500, memo="rent")
        seen_by_alice = await until(a, balance_of(alice.wallet_id, 7_500))
        transfer = next(m["transfer"] for m in seen_by_alice if m["type"] == "transfer")
        assert transfer["id"] == payment and transfer["amount"] == 2_500
        assert transfer["status"] == "posted" and transfer["memo"] == "rent"
        assert seen_by_alice[-1]["wallet"]["available"] == 7_500
        seen_by_bob = await until(b, balance_of(bob.wallet_id, 2_500))
        assert any(m["type"] == "transfer" and m["transfer"]["id"] == payment for m in seen_by_bob)

        # Carol's next message is about her own money: the feed is ordered by commit, so
        # had she been sent anything about Alice's payment, it would have come first.
        own = await fund(carol.wallet_id, 1)
        seen_by_carol = await until(c, balance_of(carol.wallet_id, 1))
        assert [m["transfer"]["id"] for m in seen_by_carol if m["type"] == "transfer"] == [own]
        assert all(
            m["wallet"]["id"] == carol.wallet_id for m in seen_by_carol if m["type"] == "balance"
        )


async def test_the_feed_takes_a_bearer_header_and_refuses_a_bad_token(
    make_user: MakeUser, wallet_app: App
) -> None:
    dave = await make_user(balance=300, name="Dave")
    headers = {"Authorization": f"Bearer {dave.token}"}
    async with wallet_app.ws_connect("/api/v1/live", headers=headers) as websocket:
        assert (await next_message(websocket))["wallet"]["balance"] == 300
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await wallet_app.ws_connect("/api/v1/live?token=not-a-token")
    assert refused.value.status == 401
    plain = await wallet_app.get("/api/v1/live", headers=headers)
    assert plain.status == 422  # a plain GET: this endpoint speaks websocket only


async def test_a_user_past_the_connection_limit_is_refused_with_429(
    make_user: MakeUser, wallet_app: App, wallet_settings: Settings
) -> None:
    erin = await make_user(name="Erin")
    limit = wallet_settings.live.max_connections_per_user
    async with contextlib.AsyncExitStack() as sockets:
        for _ in range(limit):
            await sockets.enter_async_context(live(wallet_app, erin.token))
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await wallet_app.ws_connect(f"/api/v1/live?token={erin.token}")
        assert refused.value.status == 429
        answer = await wallet_app.get(
            "/api/v1/live",
            headers={"Authorization": f"Bearer {erin.token}", "Connection": "Upgrade",
                     "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                     "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode()},
        )  # fmt: skip
        assert answer.status == 429
        assert (await answer.json())["error"]["code"] == "rate_limited"
    # The server forgets a socket once its handler has seen the close: a moment after ours.
    hub = wallet_app.app[NODE_KEY].notifications.live  # type: ignore[union-attr]
    await wait_until(lambda: hub.connections_of(erin.user_id) == 0, "the closed sockets to go")
    async with live(wallet_app, erin.token) as websocket:  # closed ones freed their places
        assert (await next_message(websocket))["type"] == "balance"
    document = await (await wallet_app.get("/api/v1/openapi.json")).json()
    documented = document["paths"]["/api/v1/live"]["get"]["responses"]["429"]
    assert documented == {"$ref": "#/components/responses/TooMany"}


async def test_the_socket_closes_when_the_token_expires(
    make_user: MakeUser, wallet_app: App, wallet_settings: Settings
) -> None:
    erin = await make_user(name="Erin")
    issued = int(time.time()) - wallet_settings.jwt.ttl_seconds + 3  # expires in 2-3 s
    token = issue_access_token(wallet_settings, erin.user_id, now=issued).token
    async with live(wallet_app, token) as websocket:
        assert (await next_message(websocket))["type"] == "balance"
        closing = await asyncio.wait_for(websocket.receive(), DEADLINE_SECONDS)
        assert closing.type is WSMsgType.CLOSE
        assert closing.data == 4001 and "expired" in closing.extra
        assert time.time() >= issued + wallet_settings.jwt.ttl_seconds


async def test_the_socket_closes_when_its_session_ends(
    api: Api, make_user: MakeUser, wallet_app: App
) -> None:
    fay = await make_user(name="Fay")
    async with live(wallet_app, fay.token) as websocket:
        assert (await next_message(websocket))["type"] == "balance"
        assert (await api.post("/api/v1/auth/logout", token=fay.token)).status == 204
        closing = await asyncio.wait_for(websocket.receive(), DEADLINE_SECONDS)
        assert closing.type is WSMsgType.CLOSE
        assert closing.data == 4001 and "ended" in closing.extra


@pytest.fixture
async def small_queue_app(
    wallet_settings: Settings, services: ResolvedServices
) -> AsyncIterator[App]:
    """A second wallet node on the same database, whose live queues hold only 16 messages."""
    settings = wallet_settings.with_values(live_queue_size=16)
    async with TestClient(TestServer(create_app(settings, services), host="127.0.0.1")) as client:
        yield client


async def _stuck_client(app: App, token: str) -> socket.socket:
    """Open the feed over a raw socket that then never reads again (a tiny receive window)."""
    loop = asyncio.get_running_loop()
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.setblocking(False)
    await loop.sock_connect(raw, (app.server.host, app.server.port))
    key = base64.b64encode(os.urandom(16)).decode()
    handshake = (
        f"GET /api/v1/live?token={token} HTTP/1.1\r\nHost: {app.server.host}\r\n"
        f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    )
    await loop.sock_sendall(raw, handshake.encode())
    head = b""
    while b"\r\n\r\n" not in head:  # one byte at a time: read the response head, nothing more
        head += await asyncio.wait_for(loop.sock_recv(raw, 1), DEADLINE_SECONDS)
    assert head.startswith(b"HTTP/1.1 101"), head
    return raw


async def test_a_stuck_client_is_dropped_while_others_keep_receiving(
    api: Api, make_user: MakeUser, small_queue_app: App
) -> None:
    frank = await make_user(balance=10**9, name="Frank")
    grace = await make_user(name="Grace")
    hub = small_queue_app.app[NODE_KEY].notifications.live  # type: ignore[union-attr]
    assert hub is not None
    stuck = await _stuck_client(small_queue_app, frank.token)
    received: list[dict[str, Any]] = []
    async with live(small_queue_app, frank.token) as healthy:

        async def read_all() -> None:
            async for message in healthy:
                received.append(message.json())

        reader = asyncio.create_task(read_all())
        await wait_until(lambda: hub.connections >= 2, "both of frank's sockets to join")
        payments: list[str] = []
        memo = "m" * 500  # big messages fill the stuck socket's buffers sooner
        deadline = time.monotonic() + DEADLINE_SECONDS
        while hub.dropped_slow == 0:
            assert time.monotonic() < deadline, "the stuck client was never dropped"
            payments += await asyncio.gather(*(pay(api, frank, grace, 1, memo) for _ in range(20)))
            await asyncio.sleep(0)  # let the hub run
        assert hub.connections == 1  # only the healthy socket is left

        # The healthy client got every payment and keeps receiving.
        last = await pay(api, frank, grace, 1)
        payments.append(last)

        def received_ids() -> list[str]:
            return [m["transfer"]["id"] for m in received if m["type"] == "transfer"]

        await wait_until(
            lambda: sorted(received_ids()) == sorted(payments),
            "the healthy client to get every payment",
        )
        # Each payment exactly once. No order is asserted: these payments were concurrent, and
        # two writer loops may commit their batches in either order (history lists them by
        # insertion); a single client's sequential payments are ordered by the other tests.
        assert len(received_ids()) == len(set(received_ids())) == len(payments)
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader

    # From the stuck client's side, the connection is gone (closed or reset).
    loop = asyncio.get_running_loop()
    with contextlib.suppress(ConnectionResetError):
        async with asyncio.timeout(DEADLINE_SECONDS):
            while await loop.sock_recv(stuck, 65536):
                pass
    stuck.close()
