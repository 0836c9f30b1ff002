"""Where ``transakt up`` puts its servers: one wallet node, or ``--nodes N`` of them as a cluster.

With one node (the default) nothing is added: no broker, and the node sends its own mail. With
N, the nodes are ``node-1`` .. ``node-N`` on ``TRANSAKT_PORT``, +1, ..., +N-1; they shard the
wallets over the RabbitMQ at ``TRANSAKT_RABBITMQ_URL`` (or, unset, the local default), and one
``transakt worker`` sends the mail for them all. Every port is checked free, and the broker
reachable, before anything starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace

from transakt.cli.checks import (
    CONNECT_TIMEOUT_SECONDS,
    RABBITMQ_VARIABLE,
    Address,
    _reason,
    check_port,
    redact_url,
)
from transakt.cli.commands import bank_address, wallet_address
from transakt.cli.errors import EXIT_USAGE, CommandError
from transakt.config.settings import Settings

__all__ = [
    "LOCAL_RABBITMQ_URL",
    "MAX_NODES",
    "Layout",
    "Node",
    "assign_ports",
    "check_broker",
    "plan_layout",
]

#: The most wallet nodes ``transakt up`` runs. Each may hold up to 13 connections to the one
#: embedded PostgreSQL (its pool of TRANSAKT_DATABASE_POOL_MAX=10, and its notifications'),
#: which allows 100 in all, the bank's 10 and the worker's included.
MAX_NODES = 6
#: The broker of ``transakt up --nodes`` when TRANSAKT_RABBITMQ_URL is unset: a local RabbitMQ
#: as installed (its guest user may connect from this machine).
LOCAL_RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/"


@dataclass(frozen=True)
class Node:
    """One wallet node to run: its id (naming its queue on the broker) and its port."""

    node_id: str
    port: int


@dataclass(frozen=True)
class Layout:
    """The wallet nodes, the bank's port, and the broker joining the nodes (None: one node)."""

    nodes: tuple[Node, ...]
    bank_port: int
    broker_url: str | None = None


def assign_ports(settings: Settings, count: int) -> Layout:
    """Node ids and ports for ``count`` (at least 2) wallet nodes, and the bank's port, without
    checking any; CommandError (exit 2) when they cannot all be different ports."""
    first, last = settings.port, settings.port + count - 1
    if last > 65535:
        raise CommandError(
            f"{count} wallet nodes need the ports {first}-{last}, past 65535: lower "
            "TRANSAKT_PORT / --port",
            EXIT_USAGE,
        )
    bank_port = settings.bank.port
    if first <= bank_port <= last:
        if "port" in settings.bank.model_fields_set:
            raise CommandError(
                f"the sandbox bank's port {bank_port} (TRANSAKT_BANK_PORT / --bank-port) is one "
                f"of the wallet nodes' ports {first}-{last} (TRANSAKT_PORT / --port and the next "
                f"{count - 1}): move one of them",
                EXIT_USAGE,
            )
        bank_port = last + 1  # the default (8081) follows the first node's: past them all
    nodes = tuple(Node(f"node-{index + 1}", first + index) for index in range(count))
    return Layout(nodes, bank_port)


def plan_layout(settings: Settings, count: int) -> Layout:
    """The ports of ``count`` wallet nodes and the bank, each checked free, and (for more than
    one node) the broker, checked reachable; CommandError (exit 2) naming what to change."""
    if not 1 <= count <= MAX_NODES:
        raise CommandError(f"--nodes {count}: run from 1 to {MAX_NODES} wallet nodes", EXIT_USAGE)
    if count == 1:  # exactly as before --nodes existed
        check_port(wallet_address(settings))
        check_port(bank_address(settings, port_option="--bank-port"))
        return Layout((Node(settings.node_id, settings.port),), settings.bank.port)
    layout = assign_ports(settings, count)
    for index, node in enumerate(layout.nodes):
        setting = "TRANSAKT_PORT / --port" + (f", +{index}" if index else "")
        what = f"wallet node {node.node_id}"
        check_port(Address(what, settings.host, node.port, "TRANSAKT_HOST / --host", setting))
    check_port(
        Address(
            "the sandbox bank",
            settings.bank.host,
            layout.bank_port,
            "TRANSAKT_BANK_HOST",
            "TRANSAKT_BANK_PORT / --bank-port",
        )
    )
    return replace(layout, broker_url=check_broker(settings, count))


@contextlib.contextmanager
def _quiet_client() -> Iterator[None]:
    # aiormq logs a failed connection as an ERROR of its own: the one line below says it all.
    logger = logging.getLogger("aiormq.connection")
    disabled, logger.disabled = logger.disabled, True
    try:
        yield
    finally:
        logger.disabled = disabled


async def _connect(url: str) -> None:
    import aio_pika

    connection = await aio_pika.connect(url, timeout=CONNECT_TIMEOUT_SECONDS)
    await connection.close()


def _why(error: BaseException) -> str:
    from aiormq.exceptions import ProbableAuthenticationError

    if isinstance(error, ProbableAuthenticationError):
        return "it refused the user name or password"
    if isinstance(error, OSError) and error.errno is not None and error.errno > 0:
        return os.strerror(error.errno).lower()  # aiormq words "connection refused" at length
    return _reason(error)


def check_broker(settings: Settings, count: int) -> str:
    """The URL of the broker ``count`` wallet nodes are to share, once it answered."""
    import aio_pika

    configured = settings.rabbitmq.url
    url = configured or LOCAL_RABBITMQ_URL
    where = f"{redact_url(url)} ({RABBITMQ_VARIABLE})"
    if not configured:
        where = f"{redact_url(url)} (the local default: {RABBITMQ_VARIABLE} is unset)"
    try:
        with _quiet_client():
            asyncio.run(_connect(url))
    except (OSError, TimeoutError, ValueError, aio_pika.exceptions.AMQPError) as exc:
        raise CommandError(
            f"{count} wallet nodes need RabbitMQ: cannot connect to {where}: {_why(exc)}; "
            f"set {RABBITMQ_VARIABLE} to a broker's URL, start a local RabbitMQ "
            "(e.g. docker run -d -p 5672:5672 rabbitmq:3), or run without --nodes",
            EXIT_USAGE,
        ) from None
    return url
