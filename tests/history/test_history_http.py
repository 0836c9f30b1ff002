"""The read side over HTTP on the session's wallet node: filtered history pages and their
cursors, CSV statements, balances at an instant and per day, and every bad parameter a 422."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import asyncpg
import pytest
from httpkit import Api, MakeUser, Person, pay_body
from waits import wait_until

from transakt.http.statement_csv import HEADER, safe_cell
from transakt.storage.ledger import commit_batch
from transakt.storage.records import NewTransfer, Settlement


async def pay(api: Api, payer: Person, payee: Person, amount: int, memo: str | None = None) -> str:
    body = pay_body(payer, payee, amount)
    if memo is not None:
        body["memo"] = memo
    answer = await api.post("/api/v1/transfers", token=payer.token, json=body)
    assert answer.status == 201, answer.text
    return str(answer.body["id"])


async def bank_move(
    pool: asyncpg.Pool, wallet: str, kind: str, amount: int, outcome: str | None
) -> str:
    """A deposit or withdrawal through the real ledger: held pending, then posted or voided."""
    transfer_id = f"trf_{uuid.uuid4().hex}"
    incoming = kind == "deposit"
    async with pool.acquire() as connection:
        first = await commit_batch(
            connection,
            [
                NewTransfer(
                    id=transfer_id,
                    kind="deposit" if incoming else "withdrawal",
                    status="pending",
                    from_account="settlement_EUR" if incoming else wallet,
                    to_account=wallet if incoming else "settlement_EUR",
                    amount=amount,
                    currency="EUR",
                    memo=None,
                    initiator_id=None,
                )
            ],
        )
        assert type(first.outcomes[0]).__name__ == "Applied", first.outcomes
        if outcome is not None:
            assert outcome in ("posted", "voided")
            settled = await commit_batch(
                connection,
                [Settlement(transfer_id, "posted" if outcome == "posted" else "voided")],
            )
            assert type(settled.outcomes[0]).__name__ == "Applied", settled.outcomes
    return transfer_id


async def history(api: Api, person: Person, **params: Any) -> list[dict[str, Any]]:
    """Every item of the filtered history, walking the pages one cursor at a time."""
    items: list[dict[str, Any]] = []
    query = {key: str(value) for key, value in params.items()}
    while True:
        answer = await api.get(
            f"/api/v1/wallets/{person.wallet_id}/transactions", token=person.token, params=query
        )
        assert answer.status == 200, answer.text
        items += answer.body["items"]
        if answer.body["next_cursor"] is None:
            return items
        query["cursor"] = answer.body["next_cursor"]


@pytest.fixture(scope="module")
async def scene(api: Api, make_user: MakeUser, wallet_pool: asyncpg.Pool) -> dict[str, Any]:
    """Alice's wallet: funded, paying Bob and Carol, paid by Bob, a voided deposit, a pending
    and a posted withdrawal, a memo that looks like a formula."""
    alice = await make_user(balance=100_000)
    bob = await make_user(balance=10_000)
    carol = await make_user()
    ids = {
        "to_bob_1": await pay(api, alice, bob, 1_000, "rent"),
        "to_bob_2": await pay(api, alice, bob, 2_500),
        "to_carol": await pay(api, alice, carol, 300, '=HYPERLINK("http://x")'),
        "from_bob": await pay(api, bob, alice, 50, "@lunch"),
        "voided_deposit": await bank_move(wallet_pool, alice.wallet_id, "deposit", 7_000, "voided"),
        "pending_withdrawal": await bank_move(
            wallet_pool, alice.wallet_id, "withdrawal", 400, None
        ),
        "posted_withdrawal": await bank_move(
            wallet_pool, alice.wallet_id, "withdrawal", 600, "posted"
        ),
    }
    return {"alice": alice, "bob": bob, "carol": carol, "ids": ids}


async def test_unfiltered_history_is_unchanged(api: Api, scene: dict[str, Any]) -> None:
    alice = scene["alice"]
    items = await history(api, alice, limit=3)
    assert len(items) == 8  # the funding deposit and the seven above
    first = await api.get(
        f"/api/v1/wallets/{alice.wallet_id}/transactions?limit=3", token=alice.token
    )
    assert first.body["next_cursor"].startswith("s") and "." not in first.body["next_cursor"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"kind": "p2p"}, {"to_bob_1", "to_bob_2", "to_carol", "from_bob"}),
        ({"kind": "withdrawal"}, {"pending_withdrawal", "posted_withdrawal"}),
        ({"kind": "deposit,withdrawal", "status": "voided"}, {"voided_deposit"}),
        ({"status": "pending"}, {"pending_withdrawal"}),
        ({"counterparty": "bob"}, {"to_bob_1", "to_bob_2", "from_bob"}),
        ({"counterparty": "bob", "min_amount": "1000"}, {"to_bob_1", "to_bob_2"}),
        ({"min_amount": "300", "max_amount": "600"}, {"to_carol", "pending_withdrawal",
                                                      "posted_withdrawal"}),
        ({"counterparty": "settlement_EUR", "kind": "withdrawal", "status": "posted"},
         {"posted_withdrawal"}),
    ],
)  # fmt: skip
async def test_filters_narrow_the_history(
    api: Api, scene: dict[str, Any], params: dict[str, str], expected: set[str]
) -> None:
    alice, ids = scene["alice"], scene["ids"]
    if params.get("counterparty") == "bob":
        params = {**params, "counterparty": scene["bob"].wallet_id}
    for limit in (1, 50):
        items = await history(api, alice, limit=limit, **params)
        by_id = {value: key for key, value in ids.items()}
        assert {by_id.get(item["id"], "funding") for item in items} == expected
        created = [item["created_at"] for item in items]
        assert created == sorted(created, reverse=True)


async def test_kind_may_repeat_and_time_bounds_are_from_inclusive_to_exclusive(
    api: Api, scene: dict[str, Any]
) -> None:
    alice, ids = scene["alice"], scene["ids"]
    repeated = await api.get(
        f"/api/v1/wallets/{alice.wallet_id}/transactions?kind=deposit&kind=withdrawal",
        token=alice.token,
    )
    assert repeated.status == 200
    assert len(repeated.body["items"]) == 4  # funding, voided deposit, two withdrawals
    everything = await history(api, alice)
    middle = next(item for item in everything if item["id"] == ids["to_carol"])
    since = await history(api, alice, **{"from": middle["created_at"]})
    assert ids["to_carol"] in {item["id"] for item in since}
    assert ids["to_bob_2"] not in {item["id"] for item in since}
    until = await history(api, alice, to=middle["created_at"])
    assert ids["to_carol"] not in {item["id"] for item in until}
    assert ids["to_bob_2"] in {item["id"] for item in until}
    # An offset is an offset: the same instant written in another zone selects the same.
    moment = datetime.fromisoformat(middle["created_at"].replace("Z", "+00:00"))
    shifted = moment.astimezone(timezone(timedelta(hours=5, minutes=30)))
    assert await history(api, alice, **{"from": shifted.isoformat()}) == since


async def test_a_cursor_is_good_only_with_its_filters(api: Api, scene: dict[str, Any]) -> None:
    alice = scene["alice"]
    path = f"/api/v1/wallets/{alice.wallet_id}/transactions"
    page = await api.get(path, token=alice.token, params={"kind": "p2p", "limit": "1"})
    cursor = page.body["next_cursor"]
    assert cursor is not None
    same = await api.get(
        path, token=alice.token, params={"kind": "p2p", "limit": "1", "cursor": cursor}
    )
    assert same.status == 200 and same.body["items"][0]["kind"] == "p2p"
    for other in ({"kind": "deposit"}, {}, {"kind": "p2p", "min_amount": "1"}):
        answer = await api.get(path, token=alice.token, params={**other, "cursor": cursor})
        assert answer.status == 422, answer.text
        assert answer.error_code == "validation_error"
        assert "cursor" in answer.body["error"]["fields"]
    # The same filters in another order or spelling are the same filters.
    reordered = await api.get(
        path, token=alice.token, params={"kind": "p2p,p2p", "limit": "1", "cursor": cursor}
    )
    assert reordered.status == 200


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("kind=refund", "kind"),
        ("kind=p2p,", "kind"),
        ("kind=P2P", "kind"),
        ("status=settled", "status"),
        ("counterparty=wal%20x", "counterparty"),
        ("counterparty=a&counterparty=b", "counterparty"),
        ("counterparty=" + "w" * 200, "counterparty"),
        ("from=yesterday", "from"),
        ("from=2026-01-01", "from"),
        ("from=2026-01-01T00:00:00", "from"),
        ("from=2026-13-01T00:00:00Z", "from"),
        ("from=2026-02-30T00:00:00Z", "from"),
        ("to=2026-01-01T25:00:00Z", "to"),
        ("to=0001-01-01T00:00:00Z", "to"),
        ("from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", "from"),
        ("from=2026-02-01T00:00:00Z&to=2026-02-01T00:00:00Z", "to"),
        ("min_amount=-1", "min_amount"),
        ("min_amount=1.5", "min_amount"),
        ("min_amount=abc", "min_amount"),
        ("max_amount=", "max_amount"),
        ("max_amount=99999999999999999", "max_amount"),
        ("min_amount=10&max_amount=9", "min_amount"),
        ("kinds=p2p", "kinds"),
        ("cursor=s12.deadbeef0000", "cursor"),
        ("cursor=garbage", "cursor"),
    ],
)
async def test_bad_filters_are_422(api: Api, scene: dict[str, Any], query: str, field: str) -> None:
    alice = scene["alice"]
    answer = await api.get(
        f"/api/v1/wallets/{alice.wallet_id}/transactions?{query}", token=alice.token
    )
    assert answer.status == 422, answer.text
    assert answer.error_code == "validation_error"
    assert field in answer.body["error"]["fields"], answer.body


def read_csv(text: str) -> list[dict[str, str]]:
    rows = list(csv.reader(io.StringIO(text)))
    assert tuple(rows[0]) == HEADER
    return [dict(zip(HEADER, row, strict=True)) for row in rows[1:]]


async def test_statement_lists_the_period_with_running_balances(
    api: Api, scene: dict[str, Any]
) -> None:
    alice, ids = scene["alice"], scene["ids"]
    now = datetime.now(UTC)
    answer = await api.get(
        f"/api/v1/wallets/{alice.wallet_id}/statement",
        token=alice.token,
        params={
            "from": (now - timedelta(days=1)).isoformat(),
            "to": (now + timedelta(minutes=1)).isoformat(),
        },
    )
    assert answer.status == 200, answer.text
    assert answer.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in answer.headers["Content-Disposition"]
    assert answer.text.endswith("\r\n")
    rows = read_csv(answer.text)
    opening, lines, closing = rows[0], rows[1:-1], rows[-1]
    assert opening["kind"] == "opening_balance" and opening["running_balance"] == "0"
    assert closing["kind"] == "closing_balance"
    wallet = await api.get(f"/api/v1/wallets/{alice.wallet_id}", token=alice.token)
    assert int(closing["running_balance"]) == wallet.body["balance"]
    assert len(lines) == 8
    running = 0
    for line in lines:
        if line["status"] == "posted":
            running += int(line["amount"])
        assert int(line["running_balance"]) == running
        assert line["currency"] == "EUR"
    by_id = {line["id"]: line for line in lines}
    assert by_id[ids["to_bob_1"]]["amount"] == "-1000"  # a number, not an escaped text
    assert by_id[ids["to_bob_1"]]["counterparty"] == scene["bob"].wallet_id
    assert by_id[ids["from_bob"]]["amount"] == "50"
    assert by_id[ids["voided_deposit"]]["status"] == "voided"
    assert by_id[ids["voided_deposit"]]["counterparty"] == "settlement_EUR"
    assert by_id[ids["pending_withdrawal"]]["status"] == "pending"
    # Memos are user text: what a spreadsheet would run is defused.
    assert by_id[ids["to_carol"]]["memo"] == '\'=HYPERLINK("http://x")'
    assert by_id[ids["from_bob"]]["memo"] == "'@lunch"
    assert by_id[ids["to_bob_1"]]["memo"] == "rent"


async def test_a_statement_of_a_past_period_opens_and_closes_at_its_balances(
    api: Api, scene: dict[str, Any]
) -> None:
    alice = scene["alice"]
    answer = await api.get(
        f"/api/v1/wallets/{alice.wallet_id}/statement",
        token=alice.token,
        params={"from": "2025-01-01T00:00:00Z", "to": "2025-12-31T00:00:00Z"},
    )
    assert answer.status == 200
    rows = read_csv(answer.text)
    assert [row["kind"] for row in rows] == ["opening_balance", "closing_balance"]
    assert rows[0]["running_balance"] == rows[1]["running_balance"] == "0"


@pytest.mark.parametrize("cell", ["=1+2", "+1", "-1", "@SUM(A1)", "\tx", "\rx"])
def test_formula_cells_get_an_apostrophe(cell: str) -> None:
    assert safe_cell(cell) == "'" + cell
    assert safe_cell("plain " + cell) == "plain " + cell
    assert safe_cell(None) == ""


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("", "from"),
        ("from=2026-01-01T00:00:00Z", "to"),
        ("from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", "from"),
        ("from=2024-01-01T00:00:00Z&to=2026-01-01T00:00:00Z", "from"),
        ("from=2026-01-01&to=2026-02-01", "from"),
        ("from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z&format=pdf", "format"),
    ],
)
async def test_bad_statement_periods_are_422(
    api: Api, scene: dict[str, Any], query: str, field: str
) -> None:
    alice = scene["alice"]
    answer = await api.get(
        f"/api/v1/wallets/{alice.wallet_id}/statement?{query}", token=alice.token
    )
    assert answer.status == 422, answer.text
    assert answer.error_code == "validation_error"
    assert field in answer.body["error"]["fields"]


async def test_balance_now_and_today_match_the_wallet(api: Api, scene: dict[str, Any]) -> None:
    alice = scene["alice"]
    wallet = await api.get(f"/api/v1/wallets/{alice.wallet_id}", token=alice.token)
    # The ledger stamps the database's clock; ask a moment after, not ahead of it.
    at = datetime.now(UTC) - timedelta(milliseconds=1)
    answer = await api.get(
        f"/api/v1/wallets/{alice.wallet_id}/balance",
        token=alice.token,
        params={"at": at.isoformat()},
    )
    assert answer.status == 200, answer.text
    assert answer.body["balance"] == wallet.body["balance"]
    assert answer.body["currency"] == "EUR" and answer.body["wallet"] == alice.wallet_id
    before = await api.get(
        f"/api/v1/wallets/{alice.wallet_id}/balance?at=2020-01-01T00:00:00Z", token=alice.token
    )
    assert before.status == 200 and before.body["balance"] == 0
    today = datetime.now(UTC).date()
    daily = await api.get(
        f"/api/v1/wallets/{alice.wallet_id}/balance/daily",
        token=alice.token,
        params={"from": (today - timedelta(days=2)).isoformat(), "to": today.isoformat()},
    )
    assert daily.status == 200, daily.text
    days = daily.body["days"]
    assert [day["date"] for day in days] == [
        (today - timedelta(days=n)).isoformat() for n in (2, 1, 0)
    ]
    assert days[-1] == {
        "date": today.isoformat(),
        "closing_balance": wallet.body["balance"],
        "final": False,
    }
    assert days[0]["closing_balance"] == 0 and days[0]["final"]


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("balance", "at"),
        ("balance?at=now", "at"),
        ("balance?at=2999-01-01T00:00:00Z", "at"),
        ("balance?at=2026-01-01T00:00:00Z&at=2026-01-02T00:00:00Z", "at"),
        ("balance/daily?from=2026-01-01", "to"),
        ("balance/daily?from=2026-01-31&to=2026-01-01", "from"),
        ("balance/daily?from=2024-01-01&to=2025-06-01", "from"),
        ("balance/daily?from=2026-02-30&to=2026-03-01", "from"),
        ("balance/daily?from=2026-01-01T00:00:00Z&to=2026-01-02", "from"),
        ("balance/daily?from=2026-01-01&to=2999-01-01", "to"),
    ],
)
async def test_bad_balance_questions_are_422(
    api: Api, scene: dict[str, Any], path: str, field: str
) -> None:
    alice = scene["alice"]
    answer = await api.get(f"/api/v1/wallets/{alice.wallet_id}/{path}", token=alice.token)
    assert answer.status == 422, answer.text
    assert answer.error_code == "validation_error"
    assert field in answer.body["error"]["fields"], answer.body


@pytest.mark.parametrize(
    "path",
    [
        "transactions?kind=p2p",
        "statement?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z",
        "balance?at=2026-01-01T00:00:00Z",
        "balance/daily?from=2026-01-01&to=2026-01-02",
    ],
)
async def test_only_the_owner_reads_a_wallets_past(
    api: Api, scene: dict[str, Any], path: str
) -> None:
    alice, bob = scene["alice"], scene["bob"]
    # The same answers as the other wallet endpoints: someone else's wallet is forbidden, an
    # unknown one not found, no token unauthorized; none of them says anything of the wallet.
    foreign = await api.get(f"/api/v1/wallets/{alice.wallet_id}/{path}", token=bob.token)
    assert foreign.status == 403 and foreign.error_code == "forbidden"
    assert "balance" not in foreign.text.replace("/balance", "")
    missing = await api.get(f"/api/v1/wallets/wal_missing/{path}", token=bob.token)
    assert missing.status == 404 and missing.error_code == "not_found"
    anonymous = await api.get(f"/api/v1/wallets/{alice.wallet_id}/{path}")
    assert anonymous.status == 401


async def test_the_openapi_document_describes_the_filters_and_endpoints(api: Api) -> None:
    document = (await api.get("/api/v1/openapi.json")).body
    history_page = document["paths"]["/api/v1/wallets/{id}/transactions"]["get"]
    names = {parameter.get("name") for parameter in history_page["parameters"]}
    assert {"kind", "status", "counterparty", "from", "to", "min_amount", "max_amount"} <= names
    statement = document["paths"]["/api/v1/wallets/{id}/statement"]["get"]
    assert "text/csv" in statement["responses"]["200"]["content"]
    for path in ("balance", "balance/daily"):
        operation = document["paths"][f"/api/v1/wallets/{{id}}/{path}"]["get"]
        assert {"403", "404", "422"} <= set(operation["responses"])


async def test_a_long_statement_streams_in_chunks_and_adds_up(
    api: Api, make_user: MakeUser, wallet_pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    payer = await make_user(balance=1_000_000)
    payee = await make_user()
    payments = [
        NewTransfer(
            id=f"trf_{uuid.uuid4().hex}",
            kind="p2p",
            status="posted",
            from_account=payer.wallet_id,
            to_account=payee.wallet_id,
            amount=1 + n % 97,
            currency="EUR",
            memo=f"-{n}" if n % 2 else f"+{n}",
            initiator_id=payer.user_id,
        )
        for n in range(1_200)
    ]
    async with wallet_pool.acquire() as connection:
        result = await commit_batch(connection, payments)
    assert all(type(outcome).__name__ == "Applied" for outcome in result.outcomes)
    now = datetime.now(UTC)
    path = f"/api/v1/wallets/{payer.wallet_id}/statement"
    params = {
        "from": (now - timedelta(hours=1)).isoformat(),
        "to": (now + timedelta(hours=1)).isoformat(),
    }
    answer = await api.get(path, token=payer.token, params=params)
    assert answer.status == 200
    assert answer.headers.get("Transfer-Encoding") == "chunked"
    rows = read_csv(answer.text)
    assert len(rows) == 1 + 1 + 1_200 + 1  # opening, the funding, the payments, closing
    running = int(rows[0]["running_balance"])
    for line in rows[1:-1]:
        running += int(line["amount"])
        assert int(line["running_balance"]) == running
        assert line["memo"].startswith(("'-", "'+", "test funding"))
    wallet = await api.get(f"/api/v1/wallets/{payer.wallet_id}", token=payer.token)
    assert int(rows[-1]["running_balance"]) == running == wallet.body["balance"]

    # A period holding more transfers than a statement lists is refused before any byte.
    monkeypatch.setattr("transakt.services.history.MAX_STATEMENT_ROWS", 1_000)
    refused = await api.get(path, token=payer.token, params=params)
    assert refused.status == 422
    assert refused.error_code == "validation_error"
    assert "shorter period" in refused.body["error"]["message"]


async def test_a_client_leaving_mid_statement_frees_its_snapshot(
    api: Api, make_user: MakeUser, wallet_pool: asyncpg.Pool
) -> None:
    payer = await make_user(balance=1_000_000)
    payee = await make_user()
    payments = [
        NewTransfer(
            id=f"trf_{uuid.uuid4().hex}",
            kind="p2p",
            status="posted",
            from_account=payer.wallet_id,
            to_account=payee.wallet_id,
            amount=3,
            currency="EUR",
            memo="x" * 400,
            initiator_id=payer.user_id,
        )
        for _ in range(5_000)
    ]
    async with wallet_pool.acquire() as connection:
        await commit_batch(connection, payments)
    now = datetime.now(UTC)
    params = {
        "from": (now - timedelta(hours=1)).isoformat(),
        "to": (now + timedelta(hours=1)).isoformat(),
    }
    path = f"/api/v1/wallets/{payer.wallet_id}/statement"
    async with api.client.get(path, headers=payer.headers, params=params) as response:
        assert response.status == 200
        first = await response.content.readany()
        assert first.startswith(b"date,id,kind")
        response.close()  # hang up with most of the 2 MB unread

    async def no_statement_left_open() -> bool:
        held = await wallet_pool.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND state LIKE 'idle in transaction%' AND query LIKE '%moment%'"
        )
        return held == 0

    await wait_until(no_statement_left_open, "the statement's snapshot to end")
    again = await api.get(path, token=payer.token, params=params)
    assert again.status == 200 and len(read_csv(again.text)) == 5_003
