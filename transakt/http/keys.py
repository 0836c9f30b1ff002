"""Typed keys for application and request state (never bare string keys)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from transakt.composition.node import Node
from transakt.config import Settings
from transakt.web.headers import REQUEST_ID_KEY

if TYPE_CHECKING:
    from transakt.http.auth import Claims

__all__ = ["CLAIMS_KEY", "NODE_KEY", "REQUEST_ID_KEY", "SETTINGS_KEY"]

NODE_KEY = web.AppKey("node", Node)
SETTINGS_KEY = web.AppKey("settings", Settings)
CLAIMS_KEY: web.RequestKey[Claims] = web.RequestKey("claims")
