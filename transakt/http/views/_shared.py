"""What every view needs: the node and its wallet service."""

from __future__ import annotations

from aiohttp import web

from transakt.actors.service import WalletService
from transakt.http.keys import NODE_KEY
from transakt.node import Node

__all__ = ["node_of", "service_of"]


def node_of(request: web.Request) -> Node:
    """The running node this application serves."""
    return request.app[NODE_KEY]


def service_of(request: web.Request) -> WalletService:
    """The wallet service every API view calls."""
    return request.app[NODE_KEY].service
