"""Sessions end when asked: logout ends a token, a password change ends all of a user's."""

from __future__ import annotations

import asyncio
import secrets
import time

import asyncpg
import pytest
from httpkit import PASSWORD, Api, MakeUser

from transakt.errors import Unauthorized
from transakt.services.sessions import Sessions
from transakt.storage import trust
from trust.conftest import OpenNode

NEW_PASSWORD = "an entirely new passphrase"


async def _until_refused(api: Api, token: str, within: float = 5.0) -> None:
    """Another node hears of a revocation by NOTIFY: wait (boundedly) until it refuses."""
    deadline = time.monotonic() + within
    while (await api.get("/api/v1/me", token=token)).status != 401:
        assert time.monotonic() < deadline, "the other node still accepts the token"
        await asyncio.sleep(0.05)


async def _login(api: Api, email: str, password: str = PASSWORD) -> str:
    answer = await api.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert answer.status == 200, answer.text
    return str(answer.body["access_token"])


async def test_logout_ends_the_token_on_every_node_and_only_that_token(
    api: Api, open_node: OpenNode, make_user: MakeUser
) -> None:
    other_node, _ = await open_node()
    person = await make_user()
    second = await _login(api, person.email)
    assert (await other_node.get("/api/v1/me", token=person.token)).status == 200

    out = await api.post("/api/v1/auth/logout", token=person.token)
    assert out.status == 204
    refused = await api.get("/api/v1/me", token=person.token)
    assert (refused.status, refused.error_code) == (401, "unauthorized")
    await _until_refused(other_node, person.token)
    again = await api.post("/api/v1/auth/logout", token=person.token)
    assert again.status == 401
    # The user's other session goes on, on both nodes.
    assert (await api.get("/api/v1/me", token=second)).status == 200
    assert (await other_node.get("/api/v1/me", token=second)).status == 200


async def test_a_password_change_ends_every_earlier_token(
    api: Api, open_node: OpenNode, make_user: MakeUser
) -> None:
    other_node, _ = await open_node()
    person = await make_user()
    phone = await _login(api, person.email)
    wrong = await api.post(
        "/api/v1/auth/password",
        token=person.token,
        json={"current_password": "not it at all", "new_password": NEW_PASSWORD},
    )
    assert (wrong.status, wrong.error_code) == (403, "forbidden")
    assert (await api.get("/api/v1/me", token=phone)).status == 200  # nothing changed

    changed = await api.post(
        "/api/v1/auth/password",
        token=person.token,
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert changed.status == 200, changed.text
    fresh = changed.body["access_token"]
    for old in (person.token, phone):
        assert (await api.get("/api/v1/me", token=old)).status == 401
        await _until_refused(other_node, old)
    assert (await api.get("/api/v1/me", token=fresh)).status == 200
    assert (await other_node.get("/api/v1/me", token=fresh)).status == 200
    old_login = await api.post(
        "/api/v1/auth/login", json={"email": person.email, "password": PASSWORD}
    )
    assert old_login.status == 401
    await _login(api, person.email, NEW_PASSWORD)


async def test_ended_sessions_stay_ended_on_a_node_started_afterwards(
    api: Api, open_node: OpenNode, make_user: MakeUser
) -> None:
    person, changer = await make_user(), await make_user()
    assert (await api.post("/api/v1/auth/logout", token=person.token)).status == 204
    changed = await api.post(
        "/api/v1/auth/password",
        token=changer.token,
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert changed.status == 200
    later, _ = await open_node()  # loads what is ended from PostgreSQL
    assert (await later.get("/api/v1/me", token=person.token)).status == 401
    assert (await later.get("/api/v1/me", token=changer.token)).status == 401
    assert (await later.get("/api/v1/me", token=changed.body["access_token"])).status == 200


async def test_a_logged_out_token_cannot_open_the_live_feed(api: Api, make_user: MakeUser) -> None:
    person = await make_user()
    assert (await api.post("/api/v1/auth/logout", token=person.token)).status == 204
    answer = await api.get("/api/v1/live", params={"token": person.token})
    assert answer.status == 401


async def test_a_lost_listener_is_restarted_and_hears_changes_again(
    wallet_pool: asyncpg.Pool,
    database_url: str,
    make_user: MakeUser,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    person = await make_user()
    sessions = Sessions(wallet_pool, database_url)
    await sessions.start()
    try:
        load = sessions._load
        loads = 0
        reloaded = asyncio.Event()

        async def load_failing_once(connection: asyncpg.Connection) -> None:
            nonlocal loads
            loads += 1
            if loads == 1:
                raise asyncpg.InterfaceError("injected: lost again while reloading")
            await load(connection)
            reloaded.set()

        monkeypatch.setattr(sessions, "_load", load_failing_once)
        # The listener's backend goes away (a database restart, a network cut): the listener
        # crashes; its first restart fails too, the second one reconnects and reloads.
        assert sessions._connection is not None
        backend = sessions._connection.get_server_pid()
        assert await wallet_pool.fetchval("SELECT pg_terminate_backend($1)", backend)
        await asyncio.wait_for(reloaded.wait(), 10)
        tasks = sessions.tasks
        assert (tasks.crashes, tasks.restarts, tasks.failed, tasks.running) == (2, 2, 0, 1)
        assert sessions.reloads == 2  # at start, and after the restart that reconnected
        # It listens again: a logout committed elsewhere reaches it by NOTIFY.
        jti = secrets.token_hex(8)
        ended = sessions.watch(person.user_id, jti, 0)
        await trust.revoke_token(wallet_pool, jti, person.user_id, time.time() + 3600)
        await asyncio.wait_for(ended.wait(), 10)
        with pytest.raises(Unauthorized):
            sessions.check(person.user_id, jti, 0)
    finally:
        await sessions.stop()
    assert sessions.tasks.running == 0
