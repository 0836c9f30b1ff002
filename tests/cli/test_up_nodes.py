"""``transakt up --nodes N``: N wallet nodes as one cluster over RabbitMQ, a mail worker, the bank.

The option is checked (one line, exit 2), a broker that does not answer is one line saying what
to do, and a real ``transakt up --nodes 2`` runs: both nodes answer, share the shards over the
broker, carry the README's session (its mail sent by the worker), and stop on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import socket
import sys
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from test_cli import _clean_env, _free_port, _one_line_error, _run_the_readme_session, _transakt
from upkit import read_up_banner

from transakt.cli import main, up_nodes
from transakt.cli.errors import EXIT_USAGE, CommandError
from transakt.config import Settings

SHARDS = 16  # fewer shard queues than the default 64: less for the broker and the test to do


def _settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def _consecutive_free_ports(count: int) -> int:
    """The first of ``count`` consecutive ports free on 127.0.0.1 (now)."""
    for _ in range(100):
        first = _free_port()
        if first + count - 1 > 65535:
            continue
        try:
            for port in range(first + 1, first + count):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        return first
    pytest.fail(f"found no {count} consecutive free ports")


def _closed_port_url() -> str:
    return f"amqp://guest:guest@127.0.0.1:{_free_port()}/"  # nothing listens there


# --------------------------------------------------------------------------------------------
# The option
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0", "-1", str(up_nodes.MAX_NODES + 1), "two"])
def test_a_bad_node_count_is_refused_in_one_line(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as refused:
        main(["up", "--nodes", value])
    assert refused.value.code == EXIT_USAGE
    error = capsys.readouterr().err
    assert error == (
        f"transakt up: argument --nodes: {value!r} is not a number of wallet nodes from 1 to "
        f"{up_nodes.MAX_NODES} (see transakt up --help)\n"
    )


def test_up_help_describes_the_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as shown:
        main(["up", "--help"])
    assert shown.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--nodes N run N wallet nodes as one cluster" in text
    assert "TRANSAKT_RABBITMQ_URL (unset: amqp://guest:guest@127.0.0.1:5672/)" in text
    assert "transakt worker" in text


def test_the_nodes_take_consecutive_ports_and_the_default_bank_port_moves_past_them() -> None:
    layout = up_nodes.assign_ports(_settings(port=8080), 3)
    assert [(node.node_id, node.port) for node in layout.nodes] == [
        ("node-1", 8080),
        ("node-2", 8081),
        ("node-3", 8082),
    ]
    assert layout.bank_port == 8083  # the default 8081 was one of theirs
    assert up_nodes.assign_ports(_settings(port=9000), 3).bank_port == 8081  # not in the way


def test_a_chosen_bank_port_among_the_nodes_ports_is_refused() -> None:
    with pytest.raises(CommandError) as refused:
        up_nodes.assign_ports(_settings(port=9000, bank_port=9001), 2)
    assert refused.value.exit_code == EXIT_USAGE
    assert str(refused.value) == (
        "the sandbox bank's port 9001 (TRANSAKT_BANK_PORT / --bank-port) is one of the wallet "
        "nodes' ports 9000-9001 (TRANSAKT_PORT / --port and the next 1): move one of them"
    )


def test_ports_past_65535_are_refused() -> None:
    with pytest.raises(CommandError, match=r"ports 65534-65536, past 65535: lower TRANSAKT_PORT"):
        up_nodes.assign_ports(_settings(port=65534), 3)


def test_a_port_in_use_names_the_node_and_its_offset(tmp_path: Path) -> None:
    first = _consecutive_free_ports(2)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", first + 1))
        taken.listen()
        result = _transakt(
            "up", "--nodes", "2", "--port", str(first), "--bank-port", str(_free_port()),
            cwd=tmp_path, env=_clean_env(TRANSAKT_RABBITMQ_URL=_closed_port_url()),
        )  # fmt: skip
    line = _one_line_error(result, "up")
    assert line == (
        f"transakt up: cannot listen on 127.0.0.1:{first + 1} for wallet node node-2 "
        "(TRANSAKT_PORT / --port, +1): address already in use"
    )
    assert not (tmp_path / ".transakt").exists(), "nothing may start"


# --------------------------------------------------------------------------------------------
# The broker
# --------------------------------------------------------------------------------------------


def test_an_unreachable_broker_is_one_line_saying_what_to_do(tmp_path: Path) -> None:
    url = _closed_port_url()
    first = _consecutive_free_ports(3)
    result = _transakt(
        "up", "--nodes", "3", "--port", str(first), "--bank-port", str(_free_port()),
        cwd=tmp_path, env=_clean_env(TRANSAKT_RABBITMQ_URL=url),
    )  # fmt: skip
    line = _one_line_error(result, "up")
    shown = url.replace("guest:guest@", "guest:***@")
    assert line == (
        f"transakt up: 3 wallet nodes need RabbitMQ: cannot connect to {shown} "
        "(TRANSAKT_RABBITMQ_URL): connection refused; set TRANSAKT_RABBITMQ_URL to a broker's "
        "URL, start a local RabbitMQ (e.g. docker run -d -p 5672:5672 rabbitmq:3), or run "
        "without --nodes"
    )
    assert not (tmp_path / ".transakt").exists(), "nothing may start without the broker"


def test_without_a_url_the_message_names_the_local_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = _closed_port_url()
    monkeypatch.setattr(up_nodes, "LOCAL_RABBITMQ_URL", url)  # a local broker that is down
    with pytest.raises(CommandError) as refused:
        up_nodes.check_broker(_settings(), 2)
    assert refused.value.exit_code == EXIT_USAGE
    shown = url.replace("guest:guest@", "guest:***@")
    assert str(refused.value).startswith(
        f"2 wallet nodes need RabbitMQ: cannot connect to {shown} (the local default: "
        "TRANSAKT_RABBITMQ_URL is unset): connection refused; set TRANSAKT_RABBITMQ_URL"
    )


# --------------------------------------------------------------------------------------------
# Node ids of replicas
# --------------------------------------------------------------------------------------------


def test_node_id_placeholders_are_expanded() -> None:
    settings = _settings(node_id="wallet-{hostname}-{pid}")
    assert settings.node_id == f"wallet-{socket.gethostname()}-{os.getpid()}"
    assert settings.with_values(port=9000).node_id == settings.node_id  # expanded once


def test_an_unknown_node_id_placeholder_is_one_line(tmp_path: Path) -> None:
    result = _transakt("migrate", cwd=tmp_path, env=_clean_env(TRANSAKT_NODE_ID="w-{host}"))
    assert _one_line_error(result, "migrate") == (
        "transakt migrate: invalid settings: TRANSAKT_NODE_ID: 'w-{host}': the only "
        "placeholders are {hostname} and {pid}"
    )


# --------------------------------------------------------------------------------------------
# A real cluster
# --------------------------------------------------------------------------------------------


@pytest.fixture
async def prefix(rabbitmq_url: str) -> AsyncIterator[str]:
    """Queue and exchange names of this test's own, deleted afterwards (as tests/cluster's)."""
    name = f"test-up-{secrets.token_hex(4)}"
    yield name
    queues = [f"{name}.shard.{shard}" for shard in range(SHARDS)]
    queues += [f"{name}.node.node-1", f"{name}.node.node-2"]
    connection = await aio_pika.connect(rabbitmq_url)
    async with connection:
        for kind, names in (("queue", queues), ("exchange", [f"{name}.bus", f"{name}.events"])):
            for each in names:
                channel = await connection.channel()
                try:
                    if kind == "queue":
                        await channel.queue_delete(each)
                    else:
                        await channel.exchange_delete(each)
                except Exception:  # absent: nothing to clean (and the channel is closed)
                    pass
                finally:
                    if not channel.is_closed:
                        await channel.close()


def _get(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:  # /readyz answers 503 while not ready
        return error.code, json.loads(error.read())


async def _until_the_shards_are_shared(ports: list[int]) -> list[dict[str, Any]]:
    """Both nodes ready, on the broker, and every shard owned by exactly one of them."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while True:
        answers = [await asyncio.to_thread(_get, f"http://127.0.0.1:{p}/readyz") for p in ports]
        brokers = [body["checks"].get("broker", {}) for _, body in answers]
        owned = sum(broker.get("shards_owned", 0) for broker in brokers)
        if all(status == 200 for status, _ in answers) and owned == SHARDS:
            return brokers
        if loop.time() > deadline:
            pytest.fail(f"the nodes did not share the {SHARDS} shards: {answers}")
        await asyncio.sleep(0.5)


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_up_with_two_nodes_runs_a_cluster_and_stops_on_ctrl_c(
    tmp_path: Path, rabbitmq_url: str, prefix: str
) -> None:
    first, bank_port = _consecutive_free_ports(2), _free_port()
    ports = [first, first + 1]
    data_dir = tmp_path / "data"
    env = _clean_env(
        TRANSAKT_RABBITMQ_URL=rabbitmq_url,
        TRANSAKT_RABBITMQ_PREFIX=prefix,
        TRANSAKT_SHARDS=str(SHARDS),
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "transakt", "up", "--nodes", "2",
        "--port", str(first), "--bank-port", str(bank_port), "--data-dir", str(data_dir),
        cwd=tmp_path, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    banner = ""
    try:
        banner = await read_up_banner(process, 120)
        assert f"http://127.0.0.1:{first}  (node-1)" in banner
        assert f"http://127.0.0.1:{first + 1}  (node-2)" in banner
        assert f"bank       http://127.0.0.1:{bank_port}  (sandbox)" in banner
        assert f"(queues {prefix}.*)" in banner

        for port in ports:
            status, body = await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/healthz")
            assert (status, body) == (200, {"status": "ok"})
        brokers = await _until_the_shards_are_shared(ports)
        assert all(broker["ok"] and broker["shards"] == SHARDS for broker in brokers), brokers

        # Sign-ups, mailed codes (from the worker: the nodes send none), a deposit and a
        # payment, on the second node.
        await _run_the_readme_session(ports[1], bank_port, data_dir)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        rest, _ = await asyncio.wait_for(process.communicate(), 90)
        output = [banner, rest.decode(errors="replace")]
    everything = "".join(output)
    assert process.returncode == 0, everything
    assert "mail worker running" in everything, "no mail worker ran"
    assert "Stopping Transakt ..." in everything
    for port in [*ports, bank_port]:  # every child stopped with the supervisor
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
    assert not (data_dir / "postgres" / "postmaster.pid").exists(), "PostgreSQL left running"
    assert not (data_dir / "redis" / "redis.pid").exists(), "Redis left running"
