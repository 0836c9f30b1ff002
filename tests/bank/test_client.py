"""The client's sorting of trouble: transient (BankUnavailable) against permanent refusals."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from transakt.bankapi import BankRequestRejected
from transakt.errors import BankUnavailable
from transakt.gateway import BankClient

from .conftest import SECRET


@pytest.fixture
async def odd_server() -> AsyncIterator[str]:
    """A server that answers the way a broken bank or a stray proxy might."""

    async def proxy_404(request: web.Request) -> web.Response:
        return web.Response(status=404, text="<html>no such page</html>")

    async def crash(request: web.Request) -> web.Response:
        return web.Response(status=502, text="bad gateway", headers={"Retry-After": "7"})

    async def garbage(request: web.Request) -> web.Response:
        return web.json_response({"unexpected": True})

    app = web.Application()
    app.router.add_get("/api/v1/accounts/{account}", proxy_404)
    app.router.add_post("/api/v1/verify-user/{account}", crash)
    app.router.add_post("/api/v1/transfers", garbage)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}"
    await runner.cleanup()


async def test_connection_refused_is_bank_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port now.
    async with BankClient(f"http://127.0.0.1:{port}", SECRET, timeout=2.0) as client:
        with pytest.raises(BankUnavailable, match="unreachable"):
            await client.get_account("DE1")


async def test_a_404_that_is_not_the_banks_is_not_an_unknown_account(odd_server: str) -> None:
    async with BankClient(odd_server, SECRET) as client:
        with pytest.raises(BankRequestRejected) as caught:
            await client.get_account("DE1")
    assert caught.value.status == 404


async def test_5xx_is_bank_unavailable_with_retry_after(odd_server: str) -> None:
    async with BankClient(odd_server, SECRET) as client:
        with pytest.raises(BankUnavailable) as caught:
            await client.verify_user("DE1")
    assert caught.value.retry_after == 7.0


async def test_an_answer_of_the_wrong_shape_is_bank_unavailable(odd_server: str) -> None:
    async with BankClient(odd_server, SECRET) as client:
        with pytest.raises(BankUnavailable, match="unexpected shape"):
            await client.transfer("t", "DE1", "debit", 1, "EUR")


async def test_a_closed_client_says_so() -> None:
    client = BankClient("http://127.0.0.1:9", SECRET)
    with pytest.raises(RuntimeError, match="not open"):
        await client.get_account("DE1")
