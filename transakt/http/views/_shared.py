"""What every view needs: the node and its wallet service."""

from __future__ import annotations

from aiohttp import web

from transakt.composition.node import Node
from transakt.http.keys import NODE_KEY
from transakt.services.wallets import WalletService

__all__ = ["node_of", "service_of"]


def node_of(request: web.Request) -> Node:
    """The running node this application serves."""
    return request.app[NODE_KEY]


def service_of(request: web.Request) -> WalletService:
    """The wallet service every API view calls."""
    return request.app[NODE_KEY].service
