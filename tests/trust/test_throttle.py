"""Throttling what can be guessed or abused: logins, sign-ups, money, a wallet's payments."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from httpkit import PASSWORD, Api, MakeUser, pay_body, unique_email

from trust.conftest import OpenNode, client_address

LOGIN = "/api/v1/auth/login"


async def _login(api: Api, email: str, password: str, headers: dict[str, str]) -> Any:
    return await api.post(LOGIN, json={"email": email, "password": password}, headers=headers)


def _assert_throttled(answer: Any, limit: int) -> None:
    assert (answer.status, answer.error_code) == (429, "rate_limited"), answer.text
    assert int(answer.headers["Retry-After"]) >= 1
    assert answer.headers["RateLimit-Limit"] == str(limit)
    assert answer.headers["RateLimit-Remaining"] == "0"
    assert int(answer.headers["RateLimit-Reset"]) >= 0
    assert answer.headers["RateLimit-Policy"].startswith(f"{limit};w=")
    assert answer.body["error"]["retry_after"] >= 1


async def test_failed_logins_lock_the_address_out_and_the_lock_ends_by_itself(
    open_node: OpenNode, make_user: MakeUser
) -> None:
    node, _ = await open_node(throttle_login_account="3/2 seconds")
    person = await make_user()
    attacker, elsewhere = client_address(), client_address()
    for _ in range(3):
        wrong = await _login(node, person.email, "not the password", attacker)
        assert wrong.status == 401
    locked = await _login(node, person.email, PASSWORD, attacker)
    _assert_throttled(locked, 3)  # even the right password: the lock says nothing about it
    # The real user, from another address, is not locked out by the attacker.
    assert (await _login(node, person.email, PASSWORD, elsewhere)).status == 200
    # The lock ends by itself.
    deadline = time.monotonic() + 10
    while (answer := await _login(node, person.email, PASSWORD, attacker)).status == 429:
        assert time.monotonic() < deadline, "the lock did not end"
        await asyncio.sleep(0.2)
    assert answer.status == 200


async def test_unknown_and_known_emails_get_the_same_answers(
    open_node: OpenNode, make_user: MakeUser
) -> None:
    node, _ = await open_node(throttle_login_account="2/minute")
    person = await make_user()
    answers: dict[str, list[Any]] = {}
    for email in (person.email, unique_email("nobody")):
        address = client_address()
        answers[email] = [await _login(node, email, "wrong password!", address) for _ in range(3)]
    known, unknown = answers.values()
    assert [(a.status, a.body) for a in known[:2]] == [(a.status, a.body) for a in unknown[:2]]
    assert known[2].status == unknown[2].status == 429
    assert known[2].body["error"]["message"] == unknown[2].body["error"]["message"]


async def test_logins_from_one_address_are_throttled_across_accounts(
    open_node: OpenNode,
) -> None:
    node, _ = await open_node(throttle_login_ip="4/minute")
    address = client_address()
    for _ in range(4):
        answer = await _login(node, unique_email(), "whatever password", address)
        assert answer.status == 401
    _assert_throttled(await _login(node, unique_email(), "whatever password", address), 4)
    # Another address is not affected.
    assert (await _login(node, unique_email(), "whatever", client_address())).status == 401


async def test_signups_from_one_address_are_throttled_before_the_bank_is_asked(
    open_node: OpenNode,
) -> None:
    node, _ = await open_node(throttle_signup_ip="2/minute")
    address = client_address()
    body = {
        "password": PASSWORD,
        "name": "Test Person",
        "bank_account": "DE00000000000000000000",
    }
    for _ in range(2):
        answer = await node.post(
            "/api/v1/auth/signup", json={**body, "email": unique_email()}, headers=address
        )
        assert answer.error_code == "bank_account_invalid"
    throttled = await node.post(
        "/api/v1/auth/signup", json={**body, "email": unique_email()}, headers=address
    )
    _assert_throttled(throttled, 2)


async def test_x_forwarded_for_counts_only_from_a_trusted_proxy(
    open_node: OpenNode, make_user: MakeUser
) -> None:
    # No trusted proxy: whatever the header says, every request comes from 127.0.0.1.
    node, _ = await open_node(throttle_login_account="2/minute", trusted_proxies="")
    person = await make_user()
    for _ in range(2):
        answer = await _login(node, person.email, "wrong password!", client_address())
        assert answer.status == 401
    _assert_throttled(await _login(node, person.email, PASSWORD, client_address()), 2)


async def test_deposits_and_withdrawals_are_throttled_per_user(
    open_node: OpenNode, make_user: MakeUser
) -> None:
    node, _ = await open_node(throttle_money_user="2/minute")
    person, other = await make_user(bank_balance=10_000), await make_user(bank_balance=10_000)
    body = {"wallet": person.wallet_id, "amount": 100, "currency": "EUR"}
    for _ in range(2):
        assert (await node.post("/api/v1/deposits", token=person.token, json=body)).status == 202
    throttled = await node.post("/api/v1/withdrawals", token=person.token, json=body)
    _assert_throttled(throttled, 2)
    other_body = {"wallet": other.wallet_id, "amount": 100, "currency": "EUR"}
    assert (await node.post("/api/v1/deposits", token=other.token, json=other_body)).status == 202


async def test_a_wallets_payments_are_throttled_by_its_actor(
    open_node: OpenNode, make_user: MakeUser
) -> None:
    node, _ = await open_node(wallet_debits_per_second=0.5, wallet_debit_burst=2)
    payer, payee = await make_user(balance=1_000), await make_user()
    for _ in range(2):
        answer = await node.post(
            "/api/v1/transfers", token=payer.token, json=pay_body(payer, payee, 1)
        )
        assert answer.status == 201, answer.text
    throttled = await node.post(
        "/api/v1/transfers", token=payer.token, json=pay_body(payer, payee, 1)
    )
    _assert_throttled(throttled, 2)
    # Money moved twice, not three times; and the payee's own payments are not affected.
    wallet = await node.get(f"/api/v1/wallets/{payer.wallet_id}", token=payer.token)
    assert wallet.body["balance"] == 998
    back = await node.post("/api/v1/transfers", token=payee.token, json=pay_body(payee, payer, 1))
    assert back.status == 201
