"""Fixtures for the runtime tests."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest

from transakt.runtime import ActorSystem, RestartPolicy, VirtualClock


@pytest.fixture
async def system() -> AsyncIterator[ActorSystem]:
    """A real-time system, shut down after the test."""
    actor_system = ActorSystem("test")
    async with actor_system:
        yield actor_system


@pytest.fixture
def clock() -> VirtualClock:
    """A virtual clock at t=0."""
    return VirtualClock()


@pytest.fixture
async def vsystem(clock: VirtualClock) -> AsyncIterator[ActorSystem]:
    """A system on virtual time with a seeded random source."""
    actor_system = ActorSystem(
        "virtual",
        clock=clock,
        random=random.Random(7),
        default_policy=RestartPolicy(min_backoff=0.1, max_backoff=1.0),
    )
    async with actor_system:
        yield actor_system
