"""GET /metrics of a wallet node: one registry written by prometheus-client, typed families."""

from __future__ import annotations

from collections.abc import Mapping

from httpkit import Api, MakeUser, pay_body
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

Families = dict[str, tuple[str, list[Sample]]]

# Every family a wallet node exports, and its type (the parser names a counter without its
# _total; prometheus-client's own Counter/Histogram add a *_created gauge beside them).
EXPECTED: Mapping[str, str] = {
    "transakt_runtime_messages": "counter",
    "transakt_runtime_restarts": "counter",
    "transakt_runtime_asks_timed_out": "counter",
    "transakt_runtime_dead_letters": "counter",
    "transakt_runtime_mailbox_full_rejections": "counter",
    "transakt_runtime_activations": "counter",
    "transakt_runtime_passivations": "counter",
    "transakt_runtime_events_published": "counter",
    "transakt_runtime_event_handler_errors": "counter",
    "transakt_runtime_active_actors": "gauge",
    "transakt_runtime_mailbox_depth": "gauge",
    "transakt_runtime_active_entities": "gauge",
    "transakt_ledger_batches": "counter",
    "transakt_ledger_operations": "counter",
    "transakt_ledger_failures": "counter",
    "transakt_ledger_commit_seconds": "counter",
    "transakt_ledger_largest_batch": "gauge",
    "transakt_ledger_queued": "gauge",
    "transakt_node_start_time_seconds": "gauge",
    "transakt_bank_breaker_state": "gauge",
    "transakt_bank_breaker_opened": "counter",
    "transakt_bank_breaker_rejected": "counter",
    "transakt_bank_breaker_failures": "counter",
    "transakt_bank_breaker_successes": "counter",
    "transakt_bank_buffer_depth": "gauge",
    "transakt_bank_in_flight": "gauge",
    "transakt_bank_requests": "counter",
    "transakt_throttle_refused": "counter",
    "transakt_sessions_revoked_tokens": "gauge",
    "transakt_sessions_reloads": "counter",
    "transakt_idempotency_in_flight": "gauge",
    "transakt_outbox_published": "counter",
    "transakt_outbox_caught_up": "counter",
    "transakt_outbox_notifications": "counter",
    "transakt_outbox_unread": "counter",
    "transakt_outbox_pruned": "counter",
    "transakt_live_connections": "gauge",
    "transakt_live_dropped_slow": "counter",
    "transakt_live_messages": "counter",
    "transakt_live_replays": "counter",
    "transakt_live_refused": "counter",
    "transakt_tasks_spawned": "counter",
    "transakt_tasks_restarts": "counter",
    "transakt_tasks_crashes": "counter",
    "transakt_tasks_failed": "counter",
    "transakt_tasks_running": "gauge",
    "transakt_http_requests": "counter",
    "transakt_http_request_duration_seconds": "histogram",
    "transakt_http_requests_in_flight": "gauge",
}


async def scrape(api: Api) -> Families:
    """GET /metrics, parsed by prometheus-client: name -> (type, samples)."""
    answer = await api.get("/metrics")
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    families: Families = {}
    for family in text_string_to_metric_families(answer.text):
        assert family.name not in families, f"{family.name} exported twice"
        families[family.name] = (family.type, family.samples)
    return families


def value(families: Families, name: str, **labels: str) -> float:
    """The sample ``name`` with exactly these labels (0 when it has none yet)."""
    found = [
        sample.value
        for _kind, samples in families.values()
        for sample in samples
        if sample.name == name and sample.labels == labels
    ]
    assert len(found) <= 1, found
    return found[0] if found else 0.0


async def test_every_family_has_its_type_and_counters_end_in_total(
    api: Api, make_user: MakeUser
) -> None:
    await make_user()
    families = await scrape(api)
    assert {name: families[name][0] for name in EXPECTED if name in families} == EXPECTED
    for name, (kind, samples) in families.items():
        assert name.startswith("transakt_"), f"{name}: not ours (the default registry?)"
        assert kind in {"counter", "gauge", "histogram"}, (name, kind)
        if kind == "counter":
            assert all(sample.name == name + "_total" for sample in samples), (name, samples)
        else:
            assert not name.endswith("_total"), name
        if name.endswith("_created"):
            assert kind == "gauge" and name.removesuffix("_created") in EXPECTED, name
        else:
            assert name in EXPECTED, f"{name} is new: add it to EXPECTED with its type"


async def test_kinds_are_labels_not_names(api: Api, make_user: MakeUser) -> None:
    payer, payee = await make_user(balance=100), await make_user()
    paid = await api.post("/api/v1/transfers", token=payer.token, json=pay_body(payer, payee, 1))
    assert paid.status == 201, paid.text
    families = await scrape(api)
    assert not [name for name in families if "WalletActor" in name or "." in name]
    kind, entities = families["transakt_runtime_active_entities"]
    assert kind == "gauge"
    assert "WalletActor" in {sample.labels["kind"] for sample in entities}
    outcomes = {sample.labels["outcome"] for sample in families["transakt_runtime_messages"][1]}
    assert outcomes == {"processed", "failed"}
    states = {s.labels["state"]: s.value for s in families["transakt_bank_breaker_state"][1]}
    assert states == {"closed": 1.0, "open": 0.0, "half_open": 0.0}


async def test_a_transfer_moves_the_ledger_runtime_and_http_counters(
    api: Api, make_user: MakeUser
) -> None:
    payer, payee = await make_user(balance=1_000), await make_user()
    before = await scrape(api)
    paid = await api.post("/api/v1/transfers", token=payer.token, json=pay_body(payer, payee, 7))
    assert paid.status == 201, paid.text
    after = await scrape(api)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("transakt_ledger_operations_total") >= 1
    assert moved("transakt_ledger_batches_total") >= 1
    assert moved("transakt_ledger_commit_seconds_total") > 0
    assert value(after, "transakt_ledger_largest_batch") >= 1
    assert moved("transakt_runtime_messages_total", outcome="processed") >= 1
    route = {"method": "POST", "route": "/api/v1/transfers"}
    assert moved("transakt_http_requests_total", **route, status="201") == 1
    assert moved("transakt_http_request_duration_seconds_count", **route) == 1
    # The scrape itself is the one request being handled.
    assert value(after, "transakt_http_requests_in_flight") == 1
    assert value(after, "transakt_node_start_time_seconds") == value(
        before, "transakt_node_start_time_seconds"
    )
