"""What every answer of either service carries, and how requests are logged.

Security headers (the dashboard's Content-Security-Policy among them), ``Server: transakt``
instead of versions, the request id, ``Cache-Control: no-store`` where asked; the request id
itself; and the access log line, which never shows a header and hides tokens in queries.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Final

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from transakt.ids import uuid4_hex
from transakt.logs import escape_controls

__all__ = ["REQUEST_ID_HEADER", "REQUEST_ID_KEY", "AccessLogger", "new_request_id", "stamp"]

REQUEST_ID_HEADER: Final = "X-Request-Id"
REQUEST_ID_KEY = web.RequestKey("request_id", str)

# A caller's own request id is kept (to trace a request across services) only when it is tame.
_INCOMING_REQUEST_ID: Final = re.compile(r"[A-Za-z0-9._-]{8,64}")
_SECRET_QUERY_PARAMETERS: Final = frozenset({"token", "access_token"})

# The dashboard's policy, sent with every answer (JSON included: it costs nothing there): only
# the app's own files run, no inline script or style, no framing, forms post only to the app.
_CONTENT_SECURITY_POLICY: Final = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self' ws: wss:",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
    )
)
_SECURITY_HEADERS: Final = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": _CONTENT_SECURITY_POLICY,
}
_SECURITY_HEADER_ITEMS: Final = tuple(_SECURITY_HEADERS.items())


def new_request_id(request: web.Request) -> str:
    """The caller's X-Request-Id when it is tame (to trace a request across services), else a
    fresh one."""
    incoming = request.headers.get(REQUEST_ID_HEADER)
    if incoming is not None and _INCOMING_REQUEST_ID.fullmatch(incoming):
        return incoming
    return uuid4_hex()


# Instead of aiohttp's "Python/3.x aiohttp/3.x": versions only help whoever looks for a known bug.
_SERVER: Final = "transakt"


def stamp(response: web.StreamResponse, request_id: str | None, no_store: bool) -> None:
    """Security headers, Server, no-store when asked, and the request id, on a response."""
    headers = response.headers
    headers["Server"] = _SERVER
    for name, value in _SECURITY_HEADER_ITEMS:
        headers.setdefault(name, value)
    if no_store:
        headers["Cache-Control"] = "no-store"
    if request_id is not None:
        headers[REQUEST_ID_HEADER] = request_id


def _redacted_target(request: web.BaseRequest) -> str:
    if not request.query_string:
        return request.path
    parts = [
        f"{name}=[redacted]" if name in _SECRET_QUERY_PARAMETERS else f"{name}={value}"
        for name, value in request.query.items()
    ]
    return f"{request.path}?{'&'.join(parts)}"


class AccessLogger(AbstractAccessLogger):
    """One line per request: no headers at all (so no Authorization), tokens in queries hidden.

    What the client chose (method, path, query) is written with its control characters escaped:
    aiohttp decodes ``%0d%0a`` in a path to CR LF, which would otherwise start a forged line.
    """

    def log(self, request: Any, response: Any, time: float) -> None:
        """Write the access line for one answered request."""
        if not self.logger.isEnabledFor(logging.INFO):
            return
        self.logger.info(
            '%s "%s %s" %s %s %.1fms id=%s',
            request.remote,
            escape_controls(request.method),
            escape_controls(_redacted_target(request)),
            response.status,
            response.body_length,
            time * 1000,
            request.get(REQUEST_ID_KEY, "-"),
        )
