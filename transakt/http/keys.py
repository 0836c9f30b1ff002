"""Typed keys for application and request state (never bare string keys)."""

from __future__ import annotations

from aiohttp import web

from transakt.config import Settings
from transakt.node import Node

__all__ = ["NODE_KEY", "REQUEST_ID_KEY", "SETTINGS_KEY", "USER_ID_KEY"]

NODE_KEY = web.AppKey("node", Node)
SETTINGS_KEY = web.AppKey("settings", Settings)
REQUEST_ID_KEY = web.RequestKey("request_id", str)
USER_ID_KEY = web.RequestKey("user_id", str)
