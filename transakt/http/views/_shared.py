"""What every view needs: the node and its wallet service."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from transakt.composition import Node
from transakt.http._json import read_json_object
from transakt.http.keys import NODE_KEY
from transakt.services.wallets import WalletService

__all__ = ["node_of", "read_optional_json_object", "service_of"]


def node_of(request: web.Request) -> Node:
    """The running node this application serves."""
    return request.app[NODE_KEY]


def service_of(request: web.Request) -> WalletService:
    """The wallet service every API view calls."""
    return request.app[NODE_KEY].service


async def read_optional_json_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object, or ``{}`` when there is none (an action without fields)."""
    if not request.body_exists:
        return {}
    return await read_json_object(request)
