"""Checks a command makes before it starts anything, so that a mistake costs one line, not a
traceback from deep inside a server's start-up: the configured database and Redis answer, the
address to listen on is free, the part to run exists.

Every message names the setting to change (``TRANSAKT_DATABASE_URL``, ``TRANSAKT_PORT /
--port``) and shows URLs with their passwords masked.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from transakt.cli.errors import EXIT_USAGE, CommandError, one_line
from transakt.config.settings import Settings

__all__ = [
    "Address",
    "check_database",
    "check_port",
    "check_redis",
    "check_services",
    "listen_errors",
    "redact_url",
]

CONNECT_TIMEOUT_SECONDS = 10.0
DATABASE_VARIABLE = "TRANSAKT_DATABASE_URL"
REDIS_VARIABLE = "TRANSAKT_REDIS_URL"
RABBITMQ_VARIABLE = "TRANSAKT_RABBITMQ_URL"
_SECRET_PARAMETERS = frozenset({"password", "sslpassword"})
# Errors of listening that are the port's (taken, privileged) rather than the host's.
_PORT_ERRORS = frozenset({errno.EADDRINUSE, errno.EACCES})


# --------------------------------------------------------------------------------------------
# URLs
# --------------------------------------------------------------------------------------------


def redact_url(url: str) -> str:
    """The URL with its password (and any password parameter) replaced by ``***``."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError:
        return "(an unparsable URL)"
    netloc = parts.netloc
    if parts.password is not None:
        userinfo, _, hostinfo = netloc.rpartition("@")
        netloc = f"{userinfo.partition(':')[0]}:***@{hostinfo}"
    query = "&".join(
        f"{key}=***" if key.lower() in _SECRET_PARAMETERS else f"{key}{sep}{value}"
        for key, sep, value in (item.partition("=") for item in parts.query.split("&") if item)
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def _url_problem(url: str, schemes: tuple[str, ...]) -> str | None:
    """What makes the URL unusable before any connection is tried, or None."""
    if not url.strip():
        return "it is empty"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError as exc:
        return one_line(exc).lower() if "port" in str(exc).lower() else "it does not parse"
    if parts.scheme not in schemes:
        return f"it does not start with {schemes[0]}://"
    return None


def _reason(error: BaseException) -> str:
    """Why a connection failed, in a few words (the OS's reason where there is one)."""
    seen: BaseException | None = error
    while seen is not None:  # a client library's error wraps the socket's
        if isinstance(seen, socket.gaierror):
            return "unknown host"
        if isinstance(seen, ConnectionRefusedError):
            return "connection refused"
        if isinstance(seen, TimeoutError):
            return f"no answer within {CONNECT_TIMEOUT_SECONDS:.0f}s"
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror.lower()
        seen = seen.__cause__ or seen.__context__
    return one_line(error) or type(error).__name__


# --------------------------------------------------------------------------------------------
# Database and Redis
# --------------------------------------------------------------------------------------------


async def _try_database(url: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(url, timeout=CONNECT_TIMEOUT_SECONDS)
    await connection.close(timeout=CONNECT_TIMEOUT_SECONDS)


def check_database(url: str) -> None:
    """Connect once to the configured database; CommandError (exit 2) naming the setting if not."""
    import asyncpg

    expected = "postgresql://user:password@host:port/database"
    problem = _url_problem(url, ("postgresql", "postgres"))
    if problem is not None:
        raise CommandError(
            f"{DATABASE_VARIABLE} is not a PostgreSQL URL ({expected}): {problem}", EXIT_USAGE
        )
    try:
        asyncio.run(_try_database(url))
    except ValueError:  # asyncpg's own parsing (ClientConfigurationError is one)
        raise CommandError(
            f"{DATABASE_VARIABLE} is not a PostgreSQL URL ({expected}): it does not parse",
            EXIT_USAGE,
        ) from None
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise CommandError(
            f"cannot connect to the database at {redact_url(url)} ({DATABASE_VARIABLE}): "
            f"{_reason(exc)}",
            EXIT_USAGE,
        ) from None


def check_redis(url: str) -> None:
    """PING the configured Redis once; CommandError (exit 2) naming the setting if it fails."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    problem = _url_problem(url, ("redis", "rediss", "unix"))
    if problem is not None:
        raise CommandError(
            f"{REDIS_VARIABLE} is not a Redis URL (redis://host:port/db): {problem}", EXIT_USAGE
        )
    try:
        client = redis.Redis.from_url(
            url,
            socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
            socket_timeout=CONNECT_TIMEOUT_SECONDS,
            retry=Retry(NoBackoff(), 0),
        )
    except ValueError as exc:
        message = f"{REDIS_VARIABLE} is not a Redis URL: {one_line(exc)}"
        raise CommandError(message, EXIT_USAGE) from None
    try:
        client.ping()
    except (OSError, redis.RedisError) as exc:
        raise CommandError(
            f"cannot connect to Redis at {redact_url(url)} ({REDIS_VARIABLE}): {_reason(exc)}",
            EXIT_USAGE,
        ) from None
    finally:
        client.close()


def check_services(settings: Settings, *, redis: bool) -> None:
    """Check the configured URLs (those left unset will be embedded servers: nothing to check)."""
    if settings.database.url is not None:
        check_database(settings.database.url)
    if redis and settings.redis.url is not None:
        check_redis(settings.redis.url)
    if settings.rabbitmq.url:
        check_rabbitmq(settings.rabbitmq.url)


async def _try_rabbitmq(url: str) -> None:
    import aio_pika

    connection = await aio_pika.connect(url, timeout=CONNECT_TIMEOUT_SECONDS)
    await connection.close()


def check_rabbitmq(url: str) -> None:
    """Open and close one connection to the configured broker; CommandError (exit 2) if not."""
    import aio_pika

    problem = _url_problem(url, ("amqp", "amqps"))
    if problem is not None:
        raise CommandError(
            f"{RABBITMQ_VARIABLE} is not an AMQP URL (amqp://user:password@host:port/vhost): "
            f"{problem}",
            EXIT_USAGE,
        )
    try:
        asyncio.run(_try_rabbitmq(url))
    except (OSError, TimeoutError, ValueError, aio_pika.exceptions.AMQPError) as exc:
        raise CommandError(
            f"cannot connect to RabbitMQ at {redact_url(url)} ({RABBITMQ_VARIABLE}): "
            f"{_reason(exc)}; unset it to run one node without a broker",
            EXIT_USAGE,
        ) from None


# --------------------------------------------------------------------------------------------
# The address to listen on
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Address:
    """Where a server is to listen, and the settings (and options) that chose it."""

    what: str  # "the wallet node"
    host: str
    port: int
    host_setting: str  # "TRANSAKT_HOST / --host"
    port_setting: str  # "TRANSAKT_PORT / --port"

    def shown(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def refusal(self, error: OSError) -> CommandError:
        """The one line for a failure to listen, naming the setting that has to change."""
        if isinstance(error, socket.gaierror):
            setting, reason = self.host_setting, "unknown host"
        else:
            setting = self.port_setting if error.errno in _PORT_ERRORS else self.host_setting
            # By errno: a server's bind error words it at length ("error while attempting...").
            reason = os.strerror(error.errno).lower() if error.errno else one_line(error)
        return CommandError(
            f"cannot listen on {self.shown()} for {self.what} ({setting}): {reason}", EXIT_USAGE
        )


def check_port(address: Address) -> None:
    """Bind to the address as the server will (SO_REUSEADDR, v6 only on v6) and let go.

    A port another program listens on fails here, before any embedded server starts; the
    server's own bind can still lose a race, which :func:`listen_errors` reports the same way.
    """
    if address.port == 0:
        return  # the OS picks a free one
    try:
        infos = socket.getaddrinfo(
            address.host or None, address.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise address.refusal(exc) from None
    for family, kind, proto, _, sockaddr in infos:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                probe.bind(sockaddr)
            except OSError as exc:
                raise address.refusal(exc) from None


@contextlib.contextmanager
def listen_errors(address: Address) -> Iterator[None]:
    """Turn a server's failure to bind its address into the same one line as check_port."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in (*_PORT_ERRORS, errno.EADDRNOTAVAIL):
            raise
        raise address.refusal(exc) from None
