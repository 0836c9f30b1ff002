"""Serving an aiohttp application so that even aiohttp's own refusals speak the contract.

A request aiohttp cannot parse (a malformed request line or header, a CR, LF or NUL in the
target, an invalid header name) never reaches the application or its middlewares: aiohttp's
``RequestHandler.handle_error`` answers it, in plain text, without the security headers, and
logs the parser's message (which quotes the client's raw bytes) with a traceback. Here that one
method is replaced, and everything else is aiohttp's:

- :class:`TransaktRequestHandler` answers such a request ``400 {"error": {"code":
  "bad_request", ...}}`` with the headers every answer carries, and logs one line naming the
  kind of error (never the bytes). A handler error that escaped the application's own error
  handling becomes a 500 in the same shape (with its traceback in the log: that is a bug).
- :class:`TransaktServer` is ``web.Server`` making those request handlers.
- :class:`TransaktAppRunner` is ``web.AppRunner`` serving through a :class:`TransaktServer`,
  with the redacting access logger by default.
- :func:`serve` runs an application on a host and port until SIGINT or SIGTERM, then stops
  gracefully: the wallet node's ``run`` uses it, and any other aiohttp app (the bank) can.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Sequence
from http import HTTPStatus
from typing import Any, Final

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import (
    BadHttpMethod,
    BadStatusLine,
    HttpProcessingError,
    InvalidHeader,
    InvalidURLError,
    LineTooLong,
    PayloadEncodingError,
)

from transakt.ids import uuid4_hex
from transakt.web.errors import error_response
from transakt.web.headers import REQUEST_ID_KEY, AccessLogger, stamp

__all__ = [
    "ACCESS_LOGGER",
    "TransaktAppRunner",
    "TransaktRequestHandler",
    "TransaktServer",
    "serve",
]

logger = logging.getLogger(__name__)

# Where the access lines go unless a caller says otherwise.
ACCESS_LOGGER: Final = logging.getLogger("transakt.http.access")

# aiohttp's run_app default; RequestHandler's own (3630 s) is meant for a reverse proxy's pool.
_KEEPALIVE_TIMEOUT: Final = 75.0

# What a client is told about its unparsable request, by the parser's exception (most specific
# first). Only these fixed words: the parser's own message quotes the raw bytes it choked on.
_REFUSALS: Final[Sequence[tuple[type[HttpProcessingError], str]]] = (
    (BadHttpMethod, "the request method is not a valid HTTP method"),
    (LineTooLong, "the request line or a request header is too long"),
    (BadStatusLine, "the request line is malformed"),
    (InvalidURLError, "the request target holds characters a URL may not contain"),
    (InvalidHeader, "a request header is malformed"),
    (PayloadEncodingError, "the request body is not framed or encoded as its headers say"),
)
_NOT_HTTP: Final = "the request is not valid HTTP"


def _refusal_message(error: HttpProcessingError) -> str:
    for klass, message in _REFUSALS:
        if isinstance(error, klass):
            return message
    return _NOT_HTTP


def _status_words(status: int) -> tuple[str, str]:
    """A code and message for a status nothing more specific names: 504, gateway_timeout."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        return "http_error", "the request could not be answered"
    return phrase.lower().replace(" ", "_").replace("-", "_"), phrase.lower()


class TransaktRequestHandler(web.RequestHandler):
    """aiohttp's HTTP protocol, answering what it cannot hand to the application in our shape."""

    __slots__ = ()

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """The answer to a request the application could not answer; the connection closes.

        Called by aiohttp for an unparsable request (``exc`` is the parser's error, status 400),
        for a handler that timed out (504) and for an exception that escaped the application
        (500). ``message`` (aiohttp's text, quoting the request) is not used.
        """
        # An unparsable request has no id yet; one that failed in the app may have its own.
        request_id = request.get(REQUEST_ID_KEY) or uuid4_hex()
        request[REQUEST_ID_KEY] = request_id  # the access line quotes it, as for any request
        if isinstance(exc, HttpProcessingError):
            response = self._refuse(request, status, exc, request_id)
        elif status == HTTPStatus.INTERNAL_SERVER_ERROR:
            # Something escaped the application's own error handling: a bug, so the traceback.
            logger.error(
                "unhandled error in %s %s (request %s)",
                request.method,
                request.path,
                request_id,
                exc_info=exc,
            )
            response = error_response(
                500,
                "internal_error",
                "an internal error occurred; quote the request id when reporting it",
                details={"request_id": request_id},
            )
        else:  # 504: the handler raised TimeoutError and nothing in the app answered it
            logger.warning(
                "answered %s %s with %s (request %s)",
                request.method,
                request.path,
                status,
                request_id,
            )
            response = error_response(status, *_status_words(status))
        if request.writer.output_size > 0:
            # aiohttp's rule: part of another answer went out already, the connection is broken.
            raise ConnectionError(
                "Response is sent already, cannot send another response with the error message"
            )
        stamp(response, request_id, no_store=True)
        response.force_close()
        return response

    def _refuse(
        self, request: web.BaseRequest, status: int, error: HttpProcessingError, request_id: str
    ) -> web.Response:
        text = _refusal_message(error)
        # Non-HTTP bytes (TLS, scanners) as a connection's first request are the internet's
        # background noise, as aiohttp also judges: kept out of the log below DEBUG.
        level = (
            logging.DEBUG
            if self._request_count == 1 and isinstance(error, BadHttpMethod)
            else logging.INFO
        )
        logger.log(
            level,
            "refused a malformed request from %s (request %s): %s, %s",
            request.remote,
            request_id,
            type(error).__name__,
            text,
        )
        return error_response(status, "bad_request", text)


class TransaktServer(web.Server):
    """``web.Server`` whose connections are handled by :class:`TransaktRequestHandler`."""

    def __call__(self) -> web.RequestHandler:
        return TransaktRequestHandler(self, loop=self._loop, **self._kwargs)


class TransaktAppRunner(web.AppRunner):
    """``web.AppRunner`` serving through :class:`TransaktServer`; takes AppRunner's options.

    The access log defaults to :class:`~transakt.http.middlewares.AccessLogger` (no headers,
    no tokens, control characters escaped) on ``transakt.http.access``; ``access_log=None``
    turns it off.
    """

    def __init__(
        self,
        app: web.Application,
        *,
        access_log_class: type[AbstractAccessLogger] = AccessLogger,
        access_log: logging.Logger | None = ACCESS_LOGGER,
        keepalive_timeout: float = _KEEPALIVE_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            app,
            access_log_class=access_log_class,
            access_log=access_log,
            keepalive_timeout=keepalive_timeout,
            **kwargs,
        )

    async def _make_server(self) -> web.Server:
        # aiohttp starts and freezes the app and gathers the handler options into a Server;
        # the same server is built again here, only making TransaktRequestHandlers.
        server = await super()._make_server()
        return TransaktServer(
            server.request_handler,
            request_factory=server.request_factory,
            handler_cancellation=server.handler_cancellation,
            loop=server._loop,
            **server._kwargs,
        )


def _urls(runner: web.BaseRunner) -> list[str]:
    urls = []
    for address in runner.addresses:
        host, port = address[:2]
        shown = f"[{host}]" if ":" in host else host
        urls.append(f"http://{shown}:{port}")
    return urls


async def serve(
    app: web.Application,
    host: str | None,
    port: int,
    *,
    shutdown_timeout: float = 60.0,
    access_log_class: type[AbstractAccessLogger] = AccessLogger,
    access_log: logging.Logger | None = ACCESS_LOGGER,
    on_listening: Callable[[str], object] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve ``app`` on ``host:port`` until SIGINT or SIGTERM, then stop gracefully.

    Stopping closes the listening sockets and idle connections, runs the app's on_shutdown
    hooks, gives in-flight requests ``shutdown_timeout`` seconds to finish, then runs its
    cleanup. ``on_listening`` gets each address served (``http://127.0.0.1:8080``; with port
    0 the port the OS picked). With ``stop`` given, setting it stops the server and signals
    are left to the caller.
    """
    runner = TransaktAppRunner(
        app,
        access_log_class=access_log_class,
        access_log=access_log,
        shutdown_timeout=shutdown_timeout,
    )
    signals: tuple[signal.Signals, ...] = ()
    if stop is None:
        stop = asyncio.Event()
        signals = (signal.SIGINT, signal.SIGTERM)
    loop = asyncio.get_running_loop()
    for signum in signals:  # before start-up: a signal while the app starts stops it after
        loop.add_signal_handler(signum, stop.set)
    try:
        await runner.setup()
        try:
            if not stop.is_set():
                await web.TCPSite(runner, host, port).start()
                if on_listening is not None:
                    for url in _urls(runner):
                        on_listening(url)
                await stop.wait()
        finally:
            await runner.cleanup()
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
