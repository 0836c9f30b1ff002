"""Idempotency-Keys keep their first answer: concurrent duplicates, refusals, what is not kept."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from httpkit import Answer, Api, MakeUser, Person, pay_body, unique_email, wallet_balance
from trustkit import mailed_code, micro_deposits

from transakt.gateway import BankClient
from transakt.services.housekeeping import Housekeeping
from trust.conftest import OpenNode

DUPLICATES = 20


async def _twenty(api: Api, path: str, token: str, body: dict[str, Any] | None) -> list[Answer]:
    key = {"Idempotency-Key": f"dup-{uuid.uuid4()}"}
    return list(
        await asyncio.gather(
            *(api.post(path, token=token, json=body, headers=key) for _ in range(DUPLICATES))
        )
    )


def _one_outcome(answers: list[Answer]) -> Answer:
    """Every duplicate got the same answer, and exactly one of them was not a replay."""
    first = answers[0]
    assert {(a.status, str(a.body)) for a in answers} == {(first.status, str(first.body))}, [
        (a.status, a.body) for a in answers
    ]
    fresh = [a for a in answers if "Idempotent-Replayed" not in a.headers]
    assert len(fresh) == 1, [dict(a.headers) for a in answers]
    return first


async def test_twenty_concurrent_payments_with_one_key_pay_once_and_agree(
    api: Api, make_user: MakeUser, wallet_pool: asyncpg.Pool
) -> None:
    # The case: 100 in the wallet, 80 asked for many times at once under one key.
    payer, payee = await make_user(balance=100), await make_user()
    answer = _one_outcome(
        await _twenty(api, "/api/v1/transfers", payer.token, pay_body(payer, payee, 80))
    )
    assert answer.status == 201
    assert (await wallet_balance(api, payer), await wallet_balance(api, payee)) == (20, 80)
    count = await wallet_pool.fetchval(
        "SELECT count(*) FROM transfers WHERE from_account = $1", payer.wallet_id
    )
    assert count == 1


async def test_twenty_concurrent_refused_payments_agree_and_replay_the_refusal(
    api: Api, make_user: MakeUser
) -> None:
    payer, payee = await make_user(balance=10), await make_user()
    answer = _one_outcome(
        await _twenty(api, "/api/v1/transfers", payer.token, pay_body(payer, payee, 80))
    )
    assert (answer.status, answer.error_code) == (409, "insufficient_funds")


async def test_twenty_concurrent_deposits_and_withdrawals_with_one_key_move_money_once(
    api: Api,
    make_user: MakeUser,
    fund: Callable[[str, int], Awaitable[str]],
    bank_client: BankClient,
) -> None:
    person = await make_user(bank_balance=10_000)
    await fund(person.wallet_id, 1_000)
    body = {"wallet": person.wallet_id, "amount": 300, "currency": "EUR"}
    deposit = _one_outcome(await _twenty(api, "/api/v1/deposits", person.token, body))
    withdrawal = _one_outcome(await _twenty(api, "/api/v1/withdrawals", person.token, body))
    assert deposit.status == withdrawal.status == 202

    async def settled() -> dict[str, Any]:
        for _ in range(250):
            wallet = await api.get(f"/api/v1/wallets/{person.wallet_id}", token=person.token)
            if wallet.body["pending_in"] == wallet.body["pending_out"] == 0:
                return dict(wallet.body)
            await asyncio.sleep(0.02)
        raise AssertionError("the bank requests did not settle")

    assert (await settled())["balance"] == 1_000 + 300 - 300
    moved = await bank_client.list_transfers(person.bank_account)
    assert sorted(t.id for t in moved) == sorted([deposit.body["id"], withdrawal.body["id"]])


async def test_twenty_concurrent_wallet_openings_with_one_key_answer_the_same_wallet(
    api: Api, make_user: MakeUser
) -> None:
    person = await make_user()
    answer = _one_outcome(await _twenty(api, "/api/v1/wallets", person.token, {"currency": "CHF"}))
    assert answer.status == 201
    wallets = await api.get("/api/v1/wallets", token=person.token)
    assert [w["currency"] for w in wallets.body["wallets"]].count("CHF") == 1


async def test_twenty_concurrent_proofs_with_one_key_agree(
    api: Api,
    make_user: MakeUser,
    bank_client: BankClient,
    bank_passcodes: dict[str, str],
    wallet_pool: asyncpg.Pool,
) -> None:
    person = await make_user(linked=False, email_verified=False)
    code = await mailed_code(wallet_pool, person.user_id)
    email = _one_outcome(
        await _twenty(api, "/api/v1/auth/verify-email", person.token, {"code": code})
    )
    assert email.body["email_verified"] is True
    amounts = await micro_deposits(
        bank_client, person.bank_account, bank_passcodes[person.bank_account]
    )
    linked = _one_outcome(
        await _twenty(api, "/api/v1/bank-account/confirm", person.token, {"amounts": amounts})
    )
    assert linked.body["status"] == "linked"
    approval = _one_outcome(
        await _twenty(
            api, "/api/v1/bank-account/approvals", person.token, {"email": unique_email()}
        )
    )
    assert approval.status == 201


async def test_twenty_concurrent_new_codes_and_deposits_requests_with_one_key_send_one(
    api: Api,
    make_user: MakeUser,
    bank_client: BankClient,
    bank_passcodes: dict[str, str],
    wallet_pool: asyncpg.Pool,
) -> None:
    person = await make_user(linked=False, email_verified=False)
    mails_before = await _code_mails(wallet_pool, person)
    _one_outcome(await _twenty(api, "/api/v1/auth/verify-email/resend", person.token, None))
    assert await _code_mails(wallet_pool, person) == mails_before + 1
    statement = await bank_client.statement(
        person.bank_account, bank_passcodes[person.bank_account]
    )
    before = len(statement.entries)
    _one_outcome(await _twenty(api, "/api/v1/bank-account/verification", person.token, None))
    statement = await bank_client.statement(
        person.bank_account, bank_passcodes[person.bank_account]
    )
    assert len(statement.entries) == before + 2  # one new pair of micro-deposits


async def _code_mails(pool: asyncpg.Pool, person: Person) -> int:
    count: int = await pool.fetchval(
        "SELECT count(*) FROM mail_deliveries WHERE recipient = $1 AND template = 'verify_email'",
        person.user_id,
    )
    return count


@pytest.mark.parametrize("refusal", ["currency_mismatch", "not_found", "recipient_unverified"])
async def test_a_decided_refusal_is_replayed_after_its_cause_is_gone(
    api: Api, make_user: MakeUser, wallet_pool: asyncpg.Pool, refusal: str
) -> None:
    payer = await make_user(balance=1_000)
    key = {"Idempotency-Key": str(uuid.uuid4())}
    if refusal == "currency_mismatch":
        payee = await make_user(currency="USD")
        body = pay_body(payer, payee, 100, to_wallet=..., to_email=payee.email)

        async def fix() -> None:
            opened = await api.post("/api/v1/wallets", token=payee.token, json={"currency": "EUR"})
            assert opened.status == 201
    elif refusal == "not_found":
        email = unique_email("later")
        body = pay_body(payer, payer, 100, to_wallet=..., to_email=email)

        async def fix() -> None:
            person = await make_user()
            await wallet_pool.execute(
                "UPDATE users SET email = $1 WHERE id = $2", email, person.user_id
            )
    else:
        payee = await make_user(email_verified=False)
        body = pay_body(payer, payee, 100, to_wallet=..., to_email=payee.email)

        async def fix() -> None:
            code = await mailed_code(wallet_pool, payee.user_id)
            verified = await api.post(
                "/api/v1/auth/verify-email", token=payee.token, json={"code": code}
            )
            assert verified.status == 200

    first = await api.post("/api/v1/transfers", token=payer.token, json=body, headers=key)
    assert first.error_code == refusal, first.text
    await fix()
    again = await api.post("/api/v1/transfers", token=payer.token, json=body, headers=key)
    assert (again.status, again.body) == (first.status, first.body)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert await wallet_balance(api, payer) == 1_000


async def test_answers_given_before_any_decision_are_not_kept(
    api: Api, open_node: OpenNode, make_user: MakeUser
) -> None:
    node, _ = await open_node(wallet_debits_per_second=0.01, wallet_debit_burst=1)
    payer, payee = await make_user(balance=1_000), await make_user()
    key = {"Idempotency-Key": str(uuid.uuid4())}
    invalid = await node.post(
        "/api/v1/transfers", token=payer.token, json=pay_body(payer, payee, 1.5), headers=key
    )
    assert (invalid.status, invalid.error_code) == (422, "validation_error")
    # Spend the wallet's one token: the next payment is throttled, and that is not kept either.
    spent = await node.post("/api/v1/transfers", token=payer.token, json=pay_body(payer, payee, 1))
    assert spent.status == 201
    throttled = await node.post(
        "/api/v1/transfers", token=payer.token, json=pay_body(payer, payee, 100), headers=key
    )
    assert throttled.status == 429
    # The same key with a valid body, on a node whose wallet is not throttled: it is new.
    passed = await api.post(
        "/api/v1/transfers", token=payer.token, json=pay_body(payer, payee, 100), headers=key
    )
    assert passed.status == 201 and "Idempotent-Replayed" not in passed.headers


async def test_answers_are_pruned_after_their_retention(
    api: Api, make_user: MakeUser, wallet_pool: asyncpg.Pool, open_node: OpenNode
) -> None:
    _, node = await open_node()
    person = await make_user()
    key = {"Idempotency-Key": str(uuid.uuid4())}
    opened = await api.post(
        "/api/v1/wallets", token=person.token, json={"currency": "SEK"}, headers=key
    )
    assert opened.status == 201
    await wallet_pool.execute(
        "UPDATE idempotency_keys SET created_at = now() - interval '2 days' "
        "WHERE user_id = $1 AND key = $2",
        person.user_id,
        key["Idempotency-Key"],
    )
    housekeeping = Housekeeping(node.repository, node.sessions, retention_seconds=24 * 3600)
    await housekeeping.run_once()
    assert housekeeping.pruned_answers >= 1
    left = await wallet_pool.fetchval(
        "SELECT count(*) FROM idempotency_keys WHERE user_id = $1", person.user_id
    )
    assert left == 0
    # Past retention the key is new again: here the wallet exists, a decided refusal.
    again = await api.post(
        "/api/v1/wallets", token=person.token, json={"currency": "SEK"}, headers=key
    )
    assert (again.status, again.error_code) == (409, "wallet_exists")
