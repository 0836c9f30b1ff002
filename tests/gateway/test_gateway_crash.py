"""The gateway killed between the bank's answer and the commit: applied once, ledgers agree.
A loop of the gateway that crashes is restarted by its supervisor and carries on."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio as aioredis
import redis.exceptions

from gateway.kit import DEPOSITS, WITHDRAWALS, Bank, Nodes, WalletNode, assert_reconciled, wait_for
from transakt.gateway.buffer import BufferedRequest
from transakt.gateway.constants import BANK_GROUP, BANK_STREAM
from transakt.storage.bank_requests import BankRequest


def _stall_after_the_bank_answers(wallet: WalletNode) -> asyncio.Event:
    """Make the gateway hang right after the bank answered; the event says it got there."""
    answered = asyncio.Event()

    async def stall(request: BankRequest) -> None:
        answered.set()
        await asyncio.Event().wait()  # until the gateway is killed

    wallet.node.gateway.after_bank_answer = stall
    return answered


async def test_killed_after_a_direct_call_is_settled_once_by_the_next_start(
    bank: Bank, nodes: Nodes
) -> None:
    wallet = await nodes.open(bank)
    person = await wallet.signup(bank, balance=10_000)
    answered = _stall_after_the_bank_answers(wallet)

    deposit = await wallet.move(DEPOSITS, person, 3_000)
    assert deposit.status == 202
    transfer_id = deposit.body["id"]
    await asyncio.wait_for(answered.wait(), 10)
    # The bank applied the debit; the wallet has not been credited: now the gateway dies.
    assert await bank.balance(person.bank_account) == person.bank_start - 3_000
    assert await wallet.status(transfer_id) == "pending"
    await wallet.kill_gateway()

    restarted = await nodes.open(bank)
    await wait_for(lambda: restarted.settled(transfer_id), "the next start to settle it")
    assert await restarted.status(transfer_id) == "posted"
    assert await bank.balance(person.bank_account) == person.bank_start - 3_000
    assert await bank.transfer_ids(person.bank_account) == [transfer_id]
    shown = await restarted.wallet(person)
    assert (shown["balance"], shown["pending_in"]) == (3_000, 0)
    await assert_reconciled(restarted)


@pytest.mark.parametrize(
    "next_node_id",
    ["gateway-node-1", "gateway-node-2"],
    ids=["the-same-node-restarts", "another-node-takes-over"],
)
async def test_killed_while_draining_the_buffer_is_settled_once(
    bank: Bank, nodes: Nodes, gateway_redis: aioredis.Redis, next_node_id: str
) -> None:
    wallet = await nodes.open(bank)
    person = await wallet.signup(bank, balance=10_000)
    opening = await wallet.move(DEPOSITS, person, 5_000)
    await wait_for(lambda: wallet.settled(opening.body["id"]), "the opening deposit")

    await bank.stop()
    withdrawal = await wallet.move(WITHDRAWALS, person, 1_200)
    assert withdrawal.status == 202
    transfer_id = withdrawal.body["id"]

    async def buffered() -> bool:
        return int(await gateway_redis.xlen(BANK_STREAM)) == 1

    await wait_for(buffered, "the withdrawal to be buffered")
    answered = _stall_after_the_bank_answers(wallet)
    await bank.start()
    await asyncio.wait_for(answered.wait(), 10)
    # The bank credited the account; the hold is still on, the stream entry unacknowledged.
    assert await bank.balance(person.bank_account) == person.bank_start - 5_000 + 1_200
    assert await wallet.status(transfer_id) == "pending"
    await wallet.kill_gateway()
    pending = await gateway_redis.xpending(BANK_STREAM, BANK_GROUP)
    assert pending["pending"] == 1

    # The same consumer re-reads its own pending entries; another claims them once idle.
    restarted = await nodes.open(bank, node_id=next_node_id)
    await wait_for(lambda: restarted.settled(transfer_id), "the entry to be settled")
    assert await restarted.status(transfer_id) == "posted"
    assert await bank.balance(person.bank_account) == person.bank_start - 5_000 + 1_200
    ids = await bank.transfer_ids(person.bank_account)
    assert sorted(ids) == sorted([opening.body["id"], transfer_id])
    shown = await restarted.wallet(person)
    assert (shown["balance"], shown["available"], shown["pending_out"]) == (3_800, 3_800, 0)

    async def acknowledged() -> bool:
        pending = await gateway_redis.xpending(BANK_STREAM, BANK_GROUP)
        return int(pending["pending"]) == 0 and int(await gateway_redis.xlen(BANK_STREAM)) == 0

    await wait_for(acknowledged, "the entry to be acknowledged")
    await assert_reconciled(restarted)


async def test_a_crashed_drain_loop_is_restarted_and_drains_the_buffer(
    bank: Bank, nodes: Nodes, monkeypatch: pytest.MonkeyPatch
) -> None:
    wallet = await nodes.open(bank)
    person = await wallet.signup(bank, balance=10_000)
    opening = await wallet.move(DEPOSITS, person, 5_000)
    await wait_for(lambda: wallet.settled(opening.body["id"]), "the opening deposit")
    gateway = wallet.node.gateway
    read = gateway.buffer.read
    crashed = False
    came_back = asyncio.Event()

    async def read_failing_once(*args: Any, **kwargs: Any) -> list[BufferedRequest]:
        nonlocal crashed
        if not crashed:
            crashed = True
            raise redis.exceptions.ConnectionError("injected: Redis went away")
        came_back.set()
        return await read(*args, **kwargs)

    # The drain reads the buffer all the time (a blocking read, then the next): its next read
    # fails, which only the restarted drain reads past.
    monkeypatch.setattr(gateway.buffer, "read", read_failing_once)
    await asyncio.wait_for(came_back.wait(), 10)
    drain = next(task for task in gateway.tasks.tasks if task.name == "bank-drain")
    assert (drain.state, drain.crashes, drain.restarts) == ("running", 1, 1)
    assert gateway.tasks.snapshot() == {
        "spawned": 2,
        "restarts": 1,
        "crashes": 1,
        "failed": 0,
        "running": 2,
    }

    # The restarted drain does its work: a withdrawal buffered while the bank is down settles.
    await bank.stop()
    withdrawal = await wallet.move(WITHDRAWALS, person, 1_200)
    assert withdrawal.status == 202
    await bank.start()
    await wait_for(lambda: wallet.settled(withdrawal.body["id"]), "the buffered withdrawal")
    assert await wallet.status(withdrawal.body["id"]) == "posted"
    assert gateway.tasks.crashes == 1
    await assert_reconciled(wallet)
