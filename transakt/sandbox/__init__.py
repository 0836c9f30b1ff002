"""The sandbox bank: its own aiohttp process, schema and settings, for demos and tests."""

from transakt.sandbox.server import create_app, run

__all__ = ["create_app", "run"]
