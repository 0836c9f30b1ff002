"""A wallet node with every review rule on, behind its own port, on the session's database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from httpkit import Api, MakeUser, Person

from transakt.cli.operators import grant
from transakt.composition.node import Node
from transakt.config import ResolvedServices, Settings
from transakt.http.app import create_app
from transakt.http.keys import NODE_KEY

#: The rules of the review node (minor units; a payer's first payments are small).
RULES = {
    "review_velocity_count": 5,
    "review_velocity_amount": 1_000_000,
    "review_velocity_seconds": 3600.0,
    "review_unusual_factor": 10.0,
    "review_unusual_history": 20,
    "review_unusual_min_history": 3,
    "review_new_recipient_amount": 200_000,
}


@pytest.fixture(scope="session")
def review_settings(wallet_settings: Settings) -> Settings:
    """The session's node settings with the review rules on."""
    return wallet_settings.with_values(**RULES)


@pytest.fixture(scope="session")
async def review_app(
    review_settings: Settings, services: ResolvedServices
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    """A wallet node whose actors judge payments by RULES (users sign up on the session node;
    their payments go through this one)."""
    app = create_app(review_settings, services)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client


@pytest.fixture(scope="session")
def review_api(review_app: TestClient[web.Request, web.Application]) -> Api:
    """The checked HTTP driver of the review node."""
    return Api(review_app)


@pytest.fixture(scope="session")
def review_node(review_app: TestClient[web.Request, web.Application]) -> Node:
    """The review node itself."""
    return review_app.app[NODE_KEY]


@pytest.fixture
async def operator(make_user: MakeUser, database_url: str, wallet_pool: asyncpg.Pool) -> Person:
    """A user granted the operator role the way an administrator does it (the CLI's grant)."""
    person = await make_user()
    assert await grant(database_url, person.email, "test") is True
    assert await grant(database_url, person.email, "test") is False  # already one
    return person
