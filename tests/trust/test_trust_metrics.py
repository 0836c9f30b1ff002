"""/metrics of nodes of their own: a registry each, trust figures, supervised tasks."""

from __future__ import annotations

import asyncio

import prometheus_client
import pytest
from httpkit import PASSWORD, Api, MakeUser
from prometheus_client.parser import text_string_to_metric_families

from transakt.runtime import RestartPolicy, TaskSupervisor
from trust.conftest import OpenNode, client_address


async def _values(api: Api) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of GET /metrics: (name, sorted labels) -> value."""
    answer = await api.get("/metrics")
    assert answer.status == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def _login_answers(values: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> float:
    return sum(
        value
        for (name, labels), value in values.items()
        if name == "transakt_http_requests_total" and ("route", "/api/v1/auth/login") in labels
    )


async def test_two_nodes_in_one_process_keep_their_own_registries(
    open_node: OpenNode, make_user: MakeUser
) -> None:
    first, first_node = await open_node(throttle_login_account="1/minute")
    second, second_node = await open_node()
    assert first_node.registry is not second_node.registry
    assert prometheus_client.REGISTRY not in (first_node.registry, second_node.registry)
    person = await make_user()
    address = client_address()
    login = {"email": person.email, "password": "not the password"}
    assert (await first.post("/api/v1/auth/login", json=login, headers=address)).status == 401
    assert (await first.post("/api/v1/auth/login", json=login, headers=address)).status == 429

    on_first, on_second = await _values(first), await _values(second)
    assert on_first["transakt_throttle_refused_total", ()] == 1
    assert on_second["transakt_throttle_refused_total", ()] == 0
    assert _login_answers(on_first) == 2
    assert _login_answers(on_second) == 0
    # Nothing of ours went to prometheus-client's process-wide default registry.
    default = prometheus_client.generate_latest(prometheus_client.REGISTRY).decode()
    assert "transakt_" not in default


async def test_logged_out_tokens_held_are_counted(open_node: OpenNode, make_user: MakeUser) -> None:
    node, _ = await open_node()
    person = await make_user()
    before = await _values(node)
    assert (await node.post("/api/v1/auth/logout", token=person.token)).status == 204
    after = await _values(node)
    held = ("transakt_sessions_revoked_tokens", ())
    assert after[held] == before[held] + 1
    assert after["transakt_idempotency_in_flight", ()] == 0
    login = {"email": person.email, "password": PASSWORD}
    assert (await node.post("/api/v1/auth/login", json=login)).status == 200


async def test_each_components_task_supervisor_is_exported_by_component(
    open_node: OpenNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    node, wallet_node = await open_node()
    tasks = TaskSupervisor("writer", restart=RestartPolicy(min_backoff=0.001, max_backoff=0.01))
    # Whatever supervisor the writer has (if any) is put back before the node closes.
    monkeypatch.setattr(wallet_node.writer, "tasks", tasks, raising=False)
    crashed, restarted = asyncio.Event(), asyncio.Event()

    async def crash_once() -> None:
        if not crashed.is_set():
            crashed.set()
            raise RuntimeError("a crash the supervisor restarts")
        restarted.set()
        await asyncio.Event().wait()

    tasks.spawn("crashes-once", crash_once)
    try:
        async with asyncio.timeout(5):
            await restarted.wait()
        values = await _values(node)
        writer = (("component", "ledger_writer"),)
        assert values["transakt_tasks_spawned_total", writer] == 1
        assert values["transakt_tasks_restarts_total", writer] == 1
        assert values["transakt_tasks_crashes_total", writer] == 1
        assert values["transakt_tasks_failed_total", writer] == 0
        assert values["transakt_tasks_running", writer] == 1
    finally:
        await tasks.close(timeout=1.0)
