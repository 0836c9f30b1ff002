"""The HTTP front door: app factory, routes, auth, error mapping, OpenAPI document."""

from transakt.http.app import create_app, run
from transakt.http.keys import NODE_KEY

__all__ = ["NODE_KEY", "create_app", "run"]
