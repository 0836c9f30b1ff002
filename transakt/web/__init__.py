"""aiohttp plumbing both services share: JSON bodies, the error shape, headers, the server.

The wallet's HTTP layer (``transakt.http``) and the sandbox bank (``transakt.sandbox``) read
request bodies, answer errors, stamp headers, log requests and serve through this package and
share nothing else of each other's.
"""

from transakt.web.errors import error_body, error_response
from transakt.web.headers import REQUEST_ID_HEADER, REQUEST_ID_KEY, AccessLogger, stamp
from transakt.web.json import MAX_BODY_BYTES, dumps, json_response, read_json_object
from transakt.web.server import TransaktAppRunner, serve

__all__ = [
    "MAX_BODY_BYTES",
    "REQUEST_ID_HEADER",
    "REQUEST_ID_KEY",
    "AccessLogger",
    "TransaktAppRunner",
    "dumps",
    "error_body",
    "error_response",
    "json_response",
    "read_json_object",
    "serve",
    "stamp",
]
