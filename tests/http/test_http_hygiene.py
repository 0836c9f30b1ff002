"""HTTP hygiene on real sockets: aiohttp's own 400s, the Server header, logs nobody can forge,
and a client that leaves mid-body.

The wallet node here is served through transakt.web.server (what ``transakt serve`` runs), not
through aiohttp's TestServer: the malformed requests never reach the application, so only the
serving seam can answer them. Raw bytes go over asyncio streams, since no HTTP client would
send them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import socket
import struct
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from httpkit import MakeUser
from multidict import CIMultiDict

from transakt.config import ResolvedServices, Settings
from transakt.errors import ClientDisconnected
from transakt.http import create_app
from transakt.logs import TEXT_FORMAT, TextFormatter, configure_logging, escape_controls
from transakt.web.json import read_json_object
from transakt.web.server import TransaktAppRunner, serve

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# Every malformed request below carries this word; no log record may ever quote it.
MARKER = "forged"
TIMEOUT_SECONDS = 10.0


# --------------------------------------------------------------------------------------------
# A wallet node served through the seam, and a raw HTTP exchange
# --------------------------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def port(wallet_settings: Settings, services: ResolvedServices) -> AsyncIterator[int]:
    """A wallet node served by TransaktAppRunner on 127.0.0.1 and a port the OS picks."""
    runner = TransaktAppRunner(create_app(wallet_settings, services))
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every record at INFO and above, and the serving seam's DEBUG ones."""
    caplog.set_level(logging.INFO)  # the access log is on for connections opened from now
    caplog.set_level(logging.DEBUG, logger="transakt.web.server")
    return caplog


@dataclass
class Raw:
    """An HTTP answer as it came off the socket."""

    status: int
    headers: CIMultiDict[str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def _parse(data: bytes) -> Raw:
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers: CIMultiDict[str] = CIMultiDict()
    for line in header_lines:
        name, _, value = line.partition(":")
        headers.add(name.strip(), value.strip())
    return Raw(int(status_line.split()[1]), headers, body)


@contextlib.asynccontextmanager
async def _connection(
    port: int,
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def exchange(port: int, raw: bytes) -> Raw:
    """Send raw bytes, read until the server closes (send Connection: close), parse the answer."""
    async with _connection(port) as (reader, writer):
        writer.write(raw)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), TIMEOUT_SECONDS)
    return _parse(data)


def get(path: str, *headers: str) -> bytes:
    """A GET request for ``path`` (sent as is) that asks the server to close afterwards."""
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def assert_stamped(answer: Raw) -> None:
    """The headers every answer carries, whoever produced it."""
    assert answer.headers.get("Server") == "transakt", answer.headers
    for name, value in SECURITY_HEADERS.items():
        assert answer.headers.get(name) == value, name
    assert "frame-ancestors 'none'" in answer.headers.get("Content-Security-Policy", "")


def assert_no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    for record in caplog.records:
        assert record.exc_info is None and record.exc_text is None, record.getMessage()
    assert "Traceback" not in caplog.text


# --------------------------------------------------------------------------------------------
# aiohttp's own 400s
# --------------------------------------------------------------------------------------------

MALFORMED = {
    "CR in the target": b"GET /forged\rline HTTP/1.1\r\nHost: x\r\n\r\n",
    "LF in the target": b"GET /forged\nline HTTP/1.1\r\nHost: x\r\n\r\n",
    "NUL in the target": b"GET /forged\x00line HTTP/1.1\r\nHost: x\r\n\r\n",
    "invalid header name": b"GET / HTTP/1.1\r\nHost: x\r\nForged Header: 1\r\n\r\n",
    "header without colon": b"GET / HTTP/1.1\r\nHost: x\r\nForgedHeader\r\n\r\n",
    "NUL in a header value": b"GET / HTTP/1.1\r\nHost: x\r\nX-Note: forged\x00\r\n\r\n",
    "malformed request line": b"GET /forged HTTP/9.9x\r\nHost: x\r\n\r\n",
    "not HTTP at all": b"FORGED\r\n\r\n",
    "bad Content-Length": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: forged\r\n\r\n",
}


@pytest.mark.parametrize("raw", MALFORMED.values(), ids=MALFORMED.keys())
async def test_a_request_aiohttp_cannot_parse_gets_the_contract_s_400(
    port: int, logs: pytest.LogCaptureFixture, raw: bytes
) -> None:
    answer = await exchange(port, raw)

    assert answer.status == 400
    assert answer.headers["Content-Type"].split(";")[0] == "application/json"
    body = answer.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == "bad_request"
    assert body["error"]["message"] and MARKER not in body["error"]["message"].lower()
    assert_stamped(answer)
    assert answer.headers["Cache-Control"] == "no-store"
    request_id = answer.headers["X-Request-Id"]

    assert_no_traceback(logs)
    refusals = [record for record in logs.records if record.name == "transakt.web.server"]
    assert len(refusals) == 1
    assert refusals[0].levelno <= logging.WARNING and request_id in refusals[0].getMessage()
    for record in logs.records:  # neither the diagnosis nor the access line quote the bytes
        assert MARKER not in record.getMessage().lower(), record.getMessage()


async def test_the_first_request_being_no_http_at_all_is_logged_at_debug_only(
    port: int, logs: pytest.LogCaptureFixture
) -> None:
    # TLS on the plain port, scanners: background noise, as aiohttp also judges.
    answer = await exchange(port, b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + bytes(32))

    assert answer.status == 400 and answer.json()["error"]["code"] == "bad_request"
    assert_stamped(answer)
    refusals = [record for record in logs.records if record.name == "transakt.web.server"]
    assert [record.levelno for record in refusals] == [logging.DEBUG]
    assert "BadHttpMethod" in refusals[0].getMessage()


# --------------------------------------------------------------------------------------------
# Server: transakt on every answer
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (get("/healthz"), 200),
        (get("/"), 200),  # the dashboard page
        (get("/api/v1/openapi.json"), 200),
        (get("/nowhere"), 404),
        (get("/api/v1/me"), 401),
        (
            b"POST /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            405,
        ),
        (MALFORMED["NUL in the target"], 400),
    ],
    ids=["ok", "page", "openapi", "not found", "unauthorized", "wrong method", "unparsable"],
)
async def test_every_answer_names_the_server_without_versions(
    port: int, request_bytes: bytes, status: int
) -> None:
    answer = await exchange(port, request_bytes)

    assert answer.status == status
    assert answer.headers.getall("Server") == ["transakt"]
    assert "aiohttp" not in str(answer.headers).lower()
    assert "python" not in str(answer.headers).lower()


async def test_a_websocket_upgrade_names_the_server_without_versions(
    port: int, make_user: MakeUser
) -> None:
    person = await make_user()
    handshake = get(
        "/api/v1/live",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
        f"Authorization: Bearer {person.token}",
    ).replace(b"Connection: close\r\n", b"")
    async with _connection(port) as (reader, writer):
        writer.write(handshake)
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT_SECONDS)
    answer = _parse(head)

    assert answer.status == 101
    assert answer.headers.getall("Server") == ["transakt"]
    assert_stamped(answer)


# --------------------------------------------------------------------------------------------
# Logs nobody can forge
# --------------------------------------------------------------------------------------------

FORGING_TARGETS = [
    "/api/v1/x%0d%0aforged",  # CR LF: a new line in every log viewer
    "/x%0aforged%09tab",
    "/x%1b[31mforged",  # an ANSI escape sequence
    "/x%c2%85forged",  # NEL, a C1 control
    "/x%e2%80%a8forged%e2%80%a9",  # the Unicode line and paragraph separators
    "/healthz?q=%0d%0aforged",
]


async def test_control_characters_a_client_sends_never_reach_the_access_log_raw(
    port: int, logs: pytest.LogCaptureFixture
) -> None:
    for target in FORGING_TARGETS:
        await exchange(port, get(target))

    access = [
        record.getMessage()
        for record in logs.records
        if record.name == "transakt.http.access" and MARKER in record.getMessage()
    ]
    assert len(access) == len(FORGING_TARGETS), access
    for record in logs.records:
        message = record.getMessage()
        assert not CONTROL_CHARACTERS.search(message), repr(message)
    assert any('"GET /api/v1/x\\r\\nforged"' in line for line in access), access
    assert any("/x\\x1b[31mforged" in line for line in access), access
    assert any("\\u2028forged\\u2029" in line for line in access), access


@pytest.mark.parametrize(
    "character",
    ["\r", "\n", "\t", "\x00", "\x1b", "\x7f", "\x85", "\x9f", "\u2028", "\u2029"],
)
def test_escape_controls_escapes_every_control_character(character: str) -> None:
    escaped = escape_controls(f"a{character}b")

    assert not CONTROL_CHARACTERS.search(escaped)
    assert escaped == "a" + repr(character)[1:-1] + "b"


def test_escape_controls_keeps_printable_text_as_it_is() -> None:
    text = "Zoë paid €12.50 to 王 (C:\\path) 👍"
    assert escape_controls(text) is text


def test_the_text_formatter_escapes_the_message_but_keeps_the_traceback() -> None:
    try:
        raise ValueError("first\nsecond")
    except ValueError:
        exc_info = sys.exc_info()
    record = logging.LogRecord(
        "transakt.http", logging.ERROR, __file__, 1, "failed in %s", ("/x\r\nforged",), exc_info
    )

    formatted = TextFormatter(TEXT_FORMAT).format(record)

    line, _, traceback = formatted.partition("\n")
    assert line.endswith("ERROR   transakt.http: failed in /x\\r\\nforged")
    assert traceback.startswith("Traceback (most recent call last):\n")
    assert traceback.endswith("ValueError: first\nsecond")  # the traceback as Python wrote it
    assert record.getMessage() == "failed in /x\r\nforged"  # the record itself is not changed


@pytest.fixture
def root_logging() -> Iterator[None]:
    """Restore the root logger (pytest's own capture handlers) after configure_logging."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    pgserver_level = logging.getLogger("pgserver").level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        logging.getLogger("pgserver").setLevel(pgserver_level)


@pytest.mark.usefixtures("root_logging")
def test_configure_logging_installs_the_escaping_formatter() -> None:
    configure_logging("warning")

    root = logging.getLogger()
    assert root.level == logging.WARNING
    assert len(root.handlers) == 1
    assert isinstance(root.handlers[0].formatter, TextFormatter)
    assert logging.getLogger("pgserver").level == logging.WARNING


@pytest.mark.usefixtures("root_logging")
def test_configure_logging_refuses_an_unknown_level() -> None:
    with pytest.raises(ValueError, match="chatty"):
        configure_logging("chatty")


# --------------------------------------------------------------------------------------------
# A client that leaves mid-body
# --------------------------------------------------------------------------------------------


def _requests_with_status(metrics: str, status: int, route: str | None = None) -> float:
    total = 0.0
    for line in metrics.splitlines():
        if not line.startswith("transakt_http_requests_total{"):
            continue
        if f'status="{status}"' in line and (route is None or f'route="{route}"' in line):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def _metrics(port: int) -> str:
    answer = await exchange(port, get("/metrics"))
    assert answer.status == 200
    return answer.body.decode()


def _handling(metrics: str) -> float:
    """The requests the node was handling when it answered this scrape, besides the scrape."""
    for line in metrics.splitlines():
        if line.startswith("transakt_http_requests_in_flight "):
            return float(line.rsplit(" ", 1)[1]) - 1
    raise AssertionError("/metrics has no transakt_http_requests_in_flight")


async def _until_handling(port: int, count: int) -> None:
    """Wait until the node handles ``count`` requests besides the scrape that asks."""
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while (handling := _handling(await _metrics(port))) != count:
        assert time.monotonic() < deadline, f"the node handles {handling:.0f}, not {count}"
        await asyncio.sleep(0.01)  # polling the gauge: handlers start and end on their own


@pytest.mark.parametrize("reset", [False, True], ids=["closed", "reset"])
async def test_a_client_leaving_mid_body_is_a_499_not_a_lost_database(
    port: int, logs: pytest.LogCaptureFixture, reset: bool
) -> None:
    login = "/api/v1/auth/login"  # public, and reads the body first
    await _until_handling(port, 0)  # an earlier test's websocket may still be closing
    before = await _metrics(port)
    head = (
        f"POST {login} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Content-Length: 1000\r\n\r\n"
    ).encode()

    async with _connection(port) as (_, writer):
        writer.write(head + b'{"email": ')  # 10 of the 1000 bytes announced
        await writer.drain()
        # The handler is now waiting for the rest of the body: the node says it handles it.
        await _until_handling(port, 1)
        if reset:  # RST instead of FIN
            raw_socket = writer.get_extra_info("socket")
            raw_socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    deadline = time.monotonic() + TIMEOUT_SECONDS
    after = await _metrics(port)
    while _requests_with_status(after, 499, login) == _requests_with_status(before, 499, login):
        assert time.monotonic() < deadline, "the abandoned request was never counted"
        await asyncio.sleep(0.05)  # the server notices the close on its own schedule
        after = await _metrics(port)

    assert _requests_with_status(after, 499, login) == _requests_with_status(before, 499, login) + 1
    assert _requests_with_status(after, 503) == _requests_with_status(before, 503)
    assert not [record for record in logs.records if "database unavailable" in record.message]
    assert_no_traceback(logs)
    access = [record.getMessage() for record in logs.records if record.name.endswith(".access")]
    assert any(f'"POST {login}" 499' in line for line in access), access


class _RequestFailingToRead:
    """What read_json_object touches of a request whose body read fails with ``error``."""

    content_length = None
    content = None  # not read: without a length, the body is read with read()

    def __init__(self, error: BaseException) -> None:
        self.error = error

    async def read(self) -> bytes:
        raise self.error


async def test_only_a_connection_reset_while_reading_the_body_means_the_client_left() -> None:
    disconnected = _RequestFailingToRead(ConnectionResetError("Connection lost"))
    with pytest.raises(ClientDisconnected):
        await read_json_object(disconnected)  # type: ignore[arg-type]
    for error in (OSError(5, "Input/output error"), TimeoutError()):
        with pytest.raises(type(error)):
            await read_json_object(_RequestFailingToRead(error))  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# serve(): any aiohttp app, stopped gracefully
# --------------------------------------------------------------------------------------------


async def test_serve_shapes_400s_for_any_app_and_finishes_in_flight_requests_on_stop() -> None:
    started = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        started.set()
        await asyncio.sleep(0.3)
        return web.Response(text="finished")

    app = web.Application()  # no Transakt middleware: the seam alone shapes the 400s
    app.router.add_get("/slow", slow)
    stop = asyncio.Event()
    urls: list[str] = []
    serving = asyncio.create_task(
        serve(app, "127.0.0.1", 0, stop=stop, on_listening=urls.append, shutdown_timeout=5.0)
    )
    try:
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while not urls:
            assert time.monotonic() < deadline and not serving.done(), "serve never listened"
            await asyncio.sleep(0.01)  # serve reports its address once it listens
        assert len(urls) == 1 and urls[0].startswith("http://127.0.0.1:")
        served_port = int(urls[0].rsplit(":", 1)[1])

        refused = await exchange(served_port, MALFORMED["header without colon"])
        assert refused.status == 400 and refused.json()["error"]["code"] == "bad_request"
        assert_stamped(refused)

        in_flight = asyncio.create_task(exchange(served_port, get("/slow")))
        await asyncio.wait_for(started.wait(), TIMEOUT_SECONDS)
        stop.set()
        answer = await asyncio.wait_for(in_flight, TIMEOUT_SECONDS)
        await asyncio.wait_for(serving, TIMEOUT_SECONDS)
    finally:
        stop.set()
        await asyncio.wait_for(serving, TIMEOUT_SECONDS)

    assert answer.status == 200 and answer.body == b"finished"
    with pytest.raises(OSError):
        await exchange(served_port, get("/slow"))


# --------------------------------------------------------------------------------------------
# `transakt serve`: all of it in the real process, logging as the command line configures it
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
async def test_transakt_serve_answers_and_logs_cleanly(
    tmp_path: Path, database_url: str, redis_url: str, bank_url: str, unused_tcp_port: int
) -> None:
    environment = {key: value for key, value in os.environ.items() if "TRANSAKT_" not in key}
    environment.update(
        TRANSAKT_HOST="127.0.0.1",
        TRANSAKT_PORT=str(unused_tcp_port),
        TRANSAKT_DATABASE_URL=database_url,
        TRANSAKT_REDIS_URL=redis_url,
        TRANSAKT_BANK_URL=bank_url,
        TRANSAKT_MAIL_IN_PROCESS="false",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "transakt",
        "serve",
        cwd=tmp_path,  # no .env file
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30.0
        while True:
            assert process.returncode is None, "transakt serve exited while starting"
            assert time.monotonic() < deadline, "transakt serve did not answer in time"
            with contextlib.suppress(OSError):
                if (await exchange(unused_tcp_port, get("/healthz"))).status == 200:
                    break
            await asyncio.sleep(0.1)  # polling a port that is not open yet

        refused = await exchange(unused_tcp_port, MALFORMED["CR in the target"])
        assert refused.status == 400 and refused.json()["error"]["code"] == "bad_request"
        assert_stamped(refused)
        assert (await exchange(unused_tcp_port, get("/x%0d%0aforged"))).status == 404
        await _until_handling(unused_tcp_port, 0)
        async with _connection(unused_tcp_port) as (_, writer):
            writer.write(
                b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"
            )
            await writer.drain()
            # Left only once the handler waits for the rest of the body (so the log has a 499).
            await _until_handling(unused_tcp_port, 1)

        process.send_signal(signal.SIGTERM)
        _, stderr_bytes = await asyncio.wait_for(process.communicate(), 20.0)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    stderr = stderr_bytes.decode()
    assert process.returncode == 0, stderr
    assert f"wallet service listening on http://127.0.0.1:{unused_tcp_port}" in stderr
    assert "Traceback" not in stderr and "database unavailable" not in stderr
    lines = stderr.splitlines()
    assert any('"GET /x\\r\\nforged" 404' in line for line in lines), stderr
    assert any('"POST /api/v1/auth/login" 499' in line for line in lines), stderr
    # One record per line: every line starts as the format does, with its date.
    for line in lines:
        assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ", line), line
