"""Fixtures for the cluster tests: a fresh queue prefix per test, deleted afterwards."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import aio_pika
import pytest
from dbkit import own_database

from cluster.nodekit import Cluster


@pytest.fixture
async def prefix(rabbitmq_url: str) -> AsyncIterator[str]:
    """Queue names of this test's own (its shard queues outlive it unless deleted)."""
    name = f"test-{secrets.token_hex(4)}"
    yield name
    connection = await aio_pika.connect(rabbitmq_url)
    async with connection:
        for shard in range(64):
            channel = await connection.channel()
            try:
                await channel.queue_delete(f"{name}.shard.{shard}")
            except Exception:  # absent: nothing to clean
                pass
            finally:
                if not channel.is_closed:
                    await channel.close()
        for exchange in (f"{name}.bus", f"{name}.events"):
            channel = await connection.channel()
            try:
                await channel.exchange_delete(exchange)
            except Exception:  # absent: nothing to clean
                pass
            finally:
                if not channel.is_closed:
                    await channel.close()


@pytest.fixture
async def cluster(
    database_url: str, redis_url: str, bank_url: str, rabbitmq_url: str, prefix: str
) -> AsyncIterator[Cluster]:
    """Wallet node processes on a database of this test's own; stopped at its end."""
    async with own_database(database_url, "transakt_cluster") as url:
        nodes = Cluster(url, redis_url, bank_url, rabbitmq_url, prefix)
        try:
            yield nodes
        finally:
            await nodes.stop()
