"""Withdrawals racing P2P payments on one wallet, with the bank up, then down, then back.

One wallet takes many concurrent withdrawals and payments out (more than it holds, so some are
overdraft attempts) and payments in, in three waves: with the bank up, with the bank down (the
withdrawals are buffered), and while the buffer drains. Every request carries its own
Idempotency-Key and some are sent twice at once. The client keeps its own books from what was
acknowledged; at the end the wallet ledger, the bank and those books must agree exactly.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from dataclasses import dataclass

import asyncpg
from httpkit import Answer, Person, pay_body

from gateway.kit import DEPOSITS, WITHDRAWALS, Bank, Nodes, WalletNode, assert_reconciled, wait_for
from transakt.storage.audit import ledger_violations
from transakt.testing import fund_wallet

OPENING = 10_000  # the racing wallet's opening deposit, through the bank
PAYEE_OPENING = 2_000
WITHDRAWAL, PAYMENT_OUT, PAYMENT_IN = 250, 200, 100


@dataclass(frozen=True, slots=True)
class Move:
    """One request: a withdrawal from the racing wallet, or a payment out of it or into it."""

    kind: str  # "withdrawal", "out" or "in"
    payer: Person
    payee: Person | None  # None for a withdrawal (it goes to the payer's bank account)
    amount: int
    key: str
    twice: bool  # sent twice at once with its key: one answer, one transfer


async def _send(wallet: WalletNode, move: Move) -> Answer:
    if move.payee is None:
        answer: Answer = await wallet.move(WITHDRAWALS, move.payer, move.amount, key=move.key)
        return answer
    return await wallet.api.post(
        "/api/v1/transfers",
        token=move.payer.token,
        json=pay_body(move.payer, move.payee, move.amount),
        headers={"Idempotency-Key": move.key},
    )


async def _wave(wallet: WalletNode, moves: list[Move]) -> list[tuple[Move, Answer]]:
    """Send every move at once; a move sent twice must get one answer twice."""

    async def one(move: Move) -> tuple[Move, Answer]:
        answers = await asyncio.gather(*(_send(wallet, move) for _ in range(1 + move.twice)))
        for other in answers[1:]:
            assert (other.status, other.body) == (answers[0].status, answers[0].body), move
        return move, answers[0]

    return list(await asyncio.gather(*(one(move) for move in moves)))


def _moves(
    rng: random.Random, name: str, racer: Person, others: list[Person], count: int
) -> list[Move]:
    """``count`` withdrawals and payments out of the racing wallet, half as many payments in."""
    moves = []
    for index in range(count):
        moves.append(
            Move("withdrawal", racer, None, WITHDRAWAL, f"{name}-w{index}", index % 3 == 0)
        )
        payee = others[index % len(others)]
        moves.append(Move("out", racer, payee, PAYMENT_OUT, f"{name}-o{index}", index % 3 == 1))
    for index in range(count // 2):
        payer = others[index % len(others)]
        moves.append(Move("in", payer, racer, PAYMENT_IN, f"{name}-i{index}", index % 3 == 2))
    rng.shuffle(moves)
    return moves


async def test_withdrawals_racing_payments_through_an_outage_keep_every_book(
    bank: Bank, nodes: Nodes
) -> None:
    wallet = await nodes.open(bank)
    racer = await wallet.signup(bank, balance=OPENING + 5_000)
    deposit = await wallet.move(DEPOSITS, racer, OPENING)
    assert deposit.status == 202, deposit.text
    await wait_for(lambda: wallet.settled(deposit.body["id"]), "the opening deposit")
    others = [await wallet.signup(bank) for _ in range(4)]
    for other in others:
        await fund_wallet(wallet.node.pool, other.wallet_id, PAYEE_OPENING)
    rng = random.Random(3)

    # Bank up: the outflows (16 x 250 + 16 x 200 = 7,200) all fit in the 10,000.
    answered = await _wave(wallet, _moves(rng, "up", racer, others, 16))
    assert [a.status for _, a in answered if a.status >= 300] == [], "all of them fit"
    # Bank down: what is left (3,600, plus 800 paid in) cannot cover another 7,200.
    await bank.stop()
    down = await _wave(wallet, _moves(rng, "down", racer, others, 16))
    buffered = [a.body["id"] for m, a in down if m.kind == "withdrawal" and a.status == 202]
    assert buffered, "no withdrawal was accepted while the bank was down"
    assert not await wallet.settled(*buffered), "the bank was down: nothing can have settled"
    await bank.start()
    # Bank back: a last wave races the buffer's drain.
    drained = await _wave(wallet, _moves(rng, "back", racer, others, 8))
    answered += down + drained

    books = {person.wallet_id: PAYEE_OPENING for person in others}
    books[racer.wallet_id] = OPENING
    acknowledged: dict[str, Move] = {}
    refused: Counter[str] = Counter()
    for move, answer in answered:
        accepted = 202 if move.kind == "withdrawal" else 201
        if answer.status == 409:
            assert answer.error_code == "insufficient_funds", answer.text
            assert move.kind != "in", "a payee's wallet holds enough for every payment in"
            refused[move.kind] += 1
            continue
        assert answer.status == accepted, answer.text
        assert answer.body["amount"] == move.amount
        assert answer.body["from_wallet"] == move.payer.wallet_id
        acknowledged[answer.body["id"]] = move
        books[move.payer.wallet_id] -= move.amount
        if move.payee is not None:
            books[move.payee.wallet_id] += move.amount
    # The race was real: overdraft attempts of both kinds were refused, and both kinds went
    # through, with the bank up and with it down.
    assert refused["withdrawal"] > 0 and refused["out"] > 0, refused
    kinds = Counter(move.kind for move in acknowledged.values())
    assert kinds["withdrawal"] > 16 and kinds["out"] >= 16, kinds
    assert kinds["in"] == sum(move.kind == "in" for move, _ in answered), kinds
    assert len(acknowledged) + sum(refused.values()) == len(answered)

    withdrawals = [tid for tid, move in acknowledged.items() if move.kind == "withdrawal"]
    await wait_for(lambda: wallet.settled(*withdrawals), "every withdrawal to settle")

    pool = wallet.node.pool
    assert await ledger_violations(pool) == []
    # Every acknowledged withdrawal and payment is in the ledger once, posted, and nothing else
    # left or reached the racing wallet (besides its opening deposit).
    rows = await pool.fetch(
        "SELECT id, kind, status, amount FROM transfers "
        "WHERE (from_account = $1 OR to_account = $1) AND id <> $2",
        racer.wallet_id,
        deposit.body["id"],
    )
    assert Counter(row["id"] for row in rows) == Counter(list(acknowledged))
    for row in rows:
        move = acknowledged[row["id"]]
        assert row["kind"] == ("withdrawal" if move.kind == "withdrawal" else "p2p")
        assert (row["status"], row["amount"]) == ("posted", move.amount)
    # No wallet is negative, and each of these holds what the client's books say, to the cent.
    negative = await pool.fetchval(
        "SELECT count(*) FROM accounts WHERE kind = 'wallet' "
        "AND (balance < 0 OR balance - pending_out < 0)"
    )
    assert negative == 0
    assert await _balances(pool, list(books)) == {
        wallet_id: (b, 0, 0) for wallet_id, b in books.items()
    }
    # Per currency, everything sums to zero, and every hold has its other side.
    sums = await pool.fetch(
        "SELECT currency, sum(balance) AS balance, sum(pending_in) AS pending_in, "
        "sum(pending_out) AS pending_out FROM accounts GROUP BY currency"
    )
    for row in sums:
        assert row["balance"] == 0 and row["pending_in"] == row["pending_out"], dict(row)

    # The bank applied the deposit and each withdrawal once, and the money arrived.
    at_bank = Counter(await bank.transfer_ids(racer.bank_account))
    assert at_bank == Counter([deposit.body["id"], *withdrawals])
    assert await bank.balance(racer.bank_account) == (
        racer.bank_start - OPENING + WITHDRAWAL * len(withdrawals)
    )
    await assert_reconciled(wallet)


async def _balances(pool: asyncpg.Pool, wallet_ids: list[str]) -> dict[str, tuple[int, int, int]]:
    rows = await pool.fetch(
        "SELECT id, balance, pending_in, pending_out FROM accounts WHERE id = ANY($1::text[])",
        wallet_ids,
    )
    return {row["id"]: (row["balance"], row["pending_in"], row["pending_out"]) for row in rows}
