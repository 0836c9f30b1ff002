"""The sandbox bank's GET /metrics: its own registry, written by prometheus-client."""

from __future__ import annotations

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from transakt.gateway import BankClient

from .conftest import RunningBank

# Every family the bank exports, and its type (the parser names a counter without _total).
EXPECTED = {
    "bank_account_cache_hits": "counter",
    "bank_account_cache_misses": "counter",
    "bank_account_cache_size": "gauge",
    "bank_http_responses": "counter",
    "bank_transfers": "counter",
    "bank_account_verifications": "counter",
    "bank_faults_injected": "counter",
}

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def _scrape(bank: RunningBank) -> tuple[dict[str, str], Samples]:
    """(family -> type, (sample, sorted labels) -> value) of the bank's /metrics."""
    async with aiohttp.ClientSession() as session, session.get(bank.url + "/metrics") as answer:
        assert answer.status == 200
        assert answer.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        text = await answer.text()
    types: dict[str, str] = {}
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        assert family.name not in types, f"{family.name} exported twice"
        types[family.name] = family.type
        for sample in family.samples:
            if family.type == "counter":
                assert sample.name == family.name + "_total", sample
            samples[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return types, samples


async def test_metrics_parse_with_their_types(bank: RunningBank) -> None:
    types, samples = await _scrape(bank)
    assert types == EXPECTED
    faults = {
        dict(labels)["kind"] for name, labels in samples if name == "bank_faults_injected_total"
    }
    assert faults == {"latency", "failure", "refuse_all"}


async def test_a_transfer_moves_the_transfer_and_response_counters(
    bank: RunningBank, bank_client: BankClient
) -> None:
    opened = await bank_client.create_account("Metered", "EUR", 100)
    _, before = await _scrape(bank)
    await bank_client.transfer("t-metered", opened.account, "debit", 30, "EUR")
    await bank_client.transfer("t-metered", opened.account, "debit", 30, "EUR")  # a replay
    await bank_client.transfer("t-too-much", opened.account, "debit", 1_000, "EUR")
    _, after = await _scrape(bank)

    def moved(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert moved("bank_transfers_total", status="completed", reason="") == 1
    assert moved("bank_transfers_total", status="rejected", reason="insufficient_funds") == 1
    # Three transfer answers and the scrape before them.
    assert moved("bank_http_responses_total", status="200") == 4
