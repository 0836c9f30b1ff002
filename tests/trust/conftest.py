"""Nodes of their own for the trust tests: tight throttles, and a proxy they trust.

The session's shared node opens every throttle wide (all tests call from 127.0.0.1). These
nodes trust 127.0.0.1 as a reverse proxy, so a test can speak for many client addresses
through X-Forwarded-For, and tighten whichever rule it tests.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from httpkit import Api

from transakt.composition.node import Node
from transakt.config import ResolvedServices, Settings
from transakt.http import create_app
from transakt.http.keys import NODE_KEY

OpenNode = Callable[..., Awaitable[tuple[Api, Node]]]

_addresses = itertools.count(1)


def client_address() -> dict[str, str]:
    """Headers that make a request come from an address no other test used."""
    number = next(_addresses)
    return {"X-Forwarded-For": f"10.{number // 65536 % 256}.{number // 256 % 256}.{number % 256}"}


@pytest.fixture
async def open_node(
    wallet_settings: Settings, services: ResolvedServices
) -> AsyncIterator[OpenNode]:
    """Start wallet nodes with the shared settings plus ``overrides``; closed after the test."""
    clients: list[TestClient[web.Request, web.Application]] = []

    async def start(**overrides: Any) -> tuple[Api, Node]:
        settings = wallet_settings.with_values(**{"trusted_proxies": "127.0.0.1", **overrides})
        client = TestClient(TestServer(create_app(settings, services), host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
        return Api(client), client.app[NODE_KEY]

    yield start
    for client in clients:
        await client.close()
