"""``transakt up``: the whole system on one machine, as child processes of a supervisor.

Embedded PostgreSQL and Redis start in this process (kept under the data directory across
restarts); the sandbox bank and the wallet node run as ``transakt bank`` and ``transakt serve``
children against their URLs, exactly as in a deployment. With ``--nodes N``, N wallet nodes
form a cluster over RabbitMQ and a ``transakt worker`` child sends the mail
(:mod:`transakt.cli.up_nodes`). The supervisor waits until every server answers ``/healthz``,
opens the demo bank accounts, prints where everything is, and stops everything on Ctrl-C, or
when a child dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from transakt.cli.checks import check_services, redact_url
from transakt.cli.embedded import check_available
from transakt.cli.embedded import services as resolve_services
from transakt.cli.errors import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_USAGE, CommandError
from transakt.cli.up_nodes import Layout, plan_layout
from transakt.config.settings import Settings
from transakt.loop import run as run_loop

if TYPE_CHECKING:
    from transakt.bankapi.models import BankAccount
    from transakt.config import ResolvedServices

__all__ = ["cmd_up"]

log = logging.getLogger("transakt.cli")

# How long `transakt up` waits for its servers to answer /healthz, and for children to exit.
UP_START_TIMEOUT_SECONDS = 60.0
UP_STOP_TIMEOUT_SECONDS = 20.0


def _local_url(host: str, port: int) -> str:
    """A URL this machine can reach a server on, given the address it binds."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


@dataclass
class _Child:
    name: str
    url: str | None  # None: no HTTP server (the mail worker)
    process: asyncio.subprocess.Process


async def _spawn(
    name: str, command: str, url: str | None, env: dict[str, str], env_file: Path | None
) -> _Child:
    # The children read the same env file; what this command changed comes through `env`.
    options = ["--env-file", str(env_file)] if env_file is not None else []
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "transakt",
        *options,
        command,
        env=env,
        stdin=subprocess.DEVNULL,
        # Own session: Ctrl-C in the terminal reaches only this supervisor, which then sends
        # each child exactly one SIGTERM. A second signal in the middle of a graceful shutdown
        # would cut it short.
        start_new_session=True,
    )
    log.info("started %s (pid %d)", name, process.pid)
    return _Child(name=name, url=url, process=process)


async def _stop_children(children: list[_Child]) -> None:
    for child in children:
        if child.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                child.process.terminate()
    for child in children:
        try:
            await asyncio.wait_for(child.process.wait(), UP_STOP_TIMEOUT_SECONDS)
        except TimeoutError:
            log.warning(
                "%s did not stop within %.0fs; killing it", child.name, UP_STOP_TIMEOUT_SECONDS
            )
            with contextlib.suppress(ProcessLookupError):
                child.process.kill()
            await child.process.wait()


def _exited(children: list[_Child]) -> _Child | None:
    return next((child for child in children if child.process.returncode is not None), None)


async def _wait_healthy(children: list[_Child], stop: asyncio.Event) -> bool:
    """Poll each server's /healthz until all answer 200; False when asked to stop first."""
    import aiohttp

    pending = {child.name: child.url for child in children if child.url is not None}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + UP_START_TIMEOUT_SECONDS
    timeout = aiohttp.ClientTimeout(total=2.0)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        while pending:
            if stop.is_set():
                return False
            if (gone := _exited(children)) is not None:
                raise CommandError(
                    f"the {gone.name} exited with code {gone.process.returncode} while starting"
                )
            if loop.time() > deadline:
                names = ", ".join(pending)
                raise CommandError(
                    f"no answer on /healthz from {names} within {UP_START_TIMEOUT_SECONDS:.0f}s"
                )
            for name, url in list(pending.items()):
                try:
                    async with session.get(f"{url}/healthz") as response:
                        if response.status == 200:
                            del pending[name]
                except (aiohttp.ClientError, TimeoutError):
                    pass  # not listening yet
            if pending:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.2)
    return True


def _banner(
    settings: Settings,
    layout: Layout,
    bank_url: str,
    data_dir: Path,
    demo_accounts: Sequence[BankAccount] = (),
) -> str:
    urls = [_local_url(settings.host, node.port) for node in layout.nodes]
    public = (settings.public_url or urls[0]).rstrip("/")
    if layout.broker_url is None:
        lines = ["", "Transakt is up.", f"  wallet     {public}"]
        mail = "(local sink)"
    else:
        lines = ["", f"Transakt is up: {len(urls)} wallet nodes, each serves every wallet."]
        lines += [
            f"  {'wallet' if index == 0 else '':<9}  {url}  ({node.node_id})"
            for index, (node, url) in enumerate(zip(layout.nodes, urls, strict=True))
        ]
        mail = "(local sink, sent by the mail worker)"
    lines += [
        f"  dashboard  {public}/",
        f"  API        {public}/api/v1/openapi.json  (as a page: {public}/api/docs)",
        f"  bank       {bank_url}  (sandbox)",
    ]
    if layout.broker_url is not None:
        prefix = settings.rabbitmq.prefix
        lines.append(f"  broker     {redact_url(layout.broker_url)}  (queues {prefix}.*)")
    lines += [f"  mail       {data_dir / 'mail'}  {mail}", f"  data       {data_dir}", ""]
    if demo_accounts:
        lines.append("  demo bank accounts (sign up with one, under its holder's name):")
        lines.extend(
            f"    {account.account}  {account.name}  {account.currency} "
            f"balance {account.balance} (minor units)  passcode {account.passcode}"
            for account in demo_accounts
        )
        lines += [
            "  the holder's statement (shows the two small deposits that link the account):",
            f"    curl -s -u ACCOUNT:PASSCODE {bank_url}/online/v1/statement",
            "  e-mail codes arrive in the mail sink above",
            "",
        ]
    lines.append(f"  try:  curl -s {public}/readyz")
    if settings.mode == "dev":
        lines.append(
            f"  play with an outage: PUT {public}/api/v1/sandbox/bank "
            '{"mode": "down"} (then "normal"; README: "Play with an outage")'
        )
    lines += ["", "Press Ctrl-C to stop.", ""]
    return "\n".join(lines)


async def _demo_accounts(settings: Settings, bank_url: str) -> list[BankAccount]:
    """The demo accounts the bank opened at start, as they stand now, with their passcodes."""
    from transakt.gateway.client import BankClient
    from transakt.sandbox.demo import DEMO_ACCOUNTS

    secret = settings.bank.service_secret.get_secret_value()
    accounts: list[BankAccount] = []
    async with BankClient(bank_url, secret, timeout=10.0) as bank:
        for demo in DEMO_ACCOUNTS:
            found = await bank.get_account(demo.account)
            if found is not None:
                accounts.append(replace(found, passcode=demo.passcode))
    return accounts


def _child_env(
    settings: Settings, services: ResolvedServices, data_dir: Path, layout: Layout, bank_url: str
) -> dict[str, str]:
    """What every child is given: the servers this process resolved, and the ports."""
    env = dict(os.environ)
    # The children use the servers this process started, as configured services: the same
    # code path as a deployment with real URLs, and one PostgreSQL for both.
    env["TRANSAKT_DATABASE_URL"] = services.database_url
    env["TRANSAKT_REDIS_URL"] = services.redis_url
    env["TRANSAKT_DATA_DIR"] = str(data_dir)
    # The ports as this command resolved them (--port and --bank-port included).
    env["TRANSAKT_PORT"] = str(settings.port)
    env["TRANSAKT_BANK_PORT"] = str(layout.bank_port)
    if "url" not in settings.bank.model_fields_set:
        # Point the wallet at the bank this command starts, even on a non-default port.
        env["TRANSAKT_BANK_URL"] = bank_url
    if layout.broker_url is not None:
        env["TRANSAKT_RABBITMQ_URL"] = layout.broker_url  # the default, when it was unset
    return env


async def _spawn_all(
    children: list[_Child],
    settings: Settings,
    layout: Layout,
    env: dict[str, str],
    env_file: Path | None,
) -> None:
    """Start the bank, then the wallet nodes, then (for a cluster) the mail worker, adding each
    to ``children`` as it starts (so that all are stopped, even if a later one fails)."""
    bank_url = _local_url(settings.bank.host, layout.bank_port)
    # The bank first: the wallet nodes call it.
    children.append(await _spawn("bank", "bank", bank_url, env, env_file))
    if layout.broker_url is None:
        url = _local_url(settings.host, settings.port)
        children.append(await _spawn("wallet node", "serve", url, env, env_file))
        return
    for node in layout.nodes:
        node_env = {
            **env,
            "TRANSAKT_NODE_ID": node.node_id,
            "TRANSAKT_PORT": str(node.port),
            "TRANSAKT_MAIL_IN_PROCESS": "false",  # the worker sends it, once for all nodes
        }
        url = _local_url(settings.host, node.port)
        children.append(
            await _spawn(f"wallet node {node.node_id}", "serve", url, node_env, env_file)
        )
    worker_env = {**env, "TRANSAKT_NODE_ID": "worker"}
    children.append(await _spawn("mail worker", "worker", None, worker_env, env_file))


async def _up(settings: Settings, layout: Layout, env_file: Path | None) -> int:
    from transakt.storage.migrate import migrate

    data_dir = settings.data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "mail").mkdir(exist_ok=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    try:
        async with resolve_services(settings) as services:
            if stop.is_set():
                return EXIT_INTERRUPTED
            applied = await migrate(services.database_url)
            if applied:
                log.info("applied migrations: %s", ", ".join(applied))
            if stop.is_set():
                return EXIT_INTERRUPTED
            return await _supervise(settings, layout, services, data_dir, env_file, stop)
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)


async def _supervise(
    settings: Settings,
    layout: Layout,
    services: ResolvedServices,
    data_dir: Path,
    env_file: Path | None,
    stop: asyncio.Event,
) -> int:
    bank_url = _local_url(settings.bank.host, layout.bank_port)
    env = _child_env(settings, services, data_dir, layout, bank_url)
    children: list[_Child] = []
    try:
        # Every server runs as a child process rather than in this process: their run()
        # functions block and own their event loops and signal handlers, whereas this
        # supervisor must stay free to notice a child dying and to answer Ctrl-C; and a wallet
        # node then runs exactly as `transakt serve` does in a deployment, against URLs handed
        # to it.
        await _spawn_all(children, settings, layout, env, env_file)
        if not await _wait_healthy(children, stop):
            return EXIT_INTERRUPTED
        demo = await _demo_accounts(settings, bank_url)
        print(_banner(settings, layout, bank_url, data_dir, demo), flush=True)

        stopping = asyncio.create_task(stop.wait())
        exits = [asyncio.create_task(child.process.wait()) for child in children]
        try:
            await asyncio.wait([stopping, *exits], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (stopping, *exits):
                task.cancel()
            await asyncio.gather(stopping, *exits, return_exceptions=True)
        if (gone := _exited(children)) is not None and not stop.is_set():
            log.error("the %s exited with code %s; stopping", gone.name, gone.process.returncode)
            return EXIT_FAILURE
        print("Stopping Transakt ...", flush=True)
        return 0
    finally:
        await _stop_children(children)


def cmd_up(settings: Settings, env_file: Path | None = None, nodes: int = 1) -> int:
    """Run the wallet node(s) and the sandbox bank on embedded PostgreSQL and Redis (and, for
    more than one node, a mail worker and RabbitMQ) until Ctrl-C."""
    if settings.port == 0 or settings.bank.port == 0:
        raise CommandError(
            "transakt up needs fixed ports: TRANSAKT_PORT (--port) and TRANSAKT_BANK_PORT "
            "(--bank-port) must not be 0",
            EXIT_USAGE,
        )
    # Fail before anything starts, rather than fail later on a server that cannot be spawned:
    # the ports, the broker (for a cluster), the configured services.
    layout = plan_layout(settings, nodes)
    check_services(settings, redis=True)
    check_available(settings, redis=True)  # before the data directory is even created
    # An absolute path: the children must find the same file whatever their directory.
    env_file = env_file.resolve() if env_file is not None else None
    return run_loop(_up(settings, layout, env_file), settings.event_loop)
