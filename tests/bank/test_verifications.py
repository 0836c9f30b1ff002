"""Account verification by micro-deposits: two small credits only the holder can see, then the
holder types them in and the wallet asks the bank to confirm."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import aiohttp
import asyncpg
import pytest

from transakt.bankapi import AccountVerification, BankRequestRejected, Faults, issue_service_token
from transakt.config import Settings
from transakt.errors import BankUnavailable
from transakt.gateway import BankClient
from transakt.sandbox import create_app

from .conftest import SCHEMA, SECRET, MakeBank, Raw, RunningBank


async def micro_deposits(bank_client: BankClient, account: str, passcode: str) -> list[int]:
    """The amounts the holder sees in their statement as TRANSAKT ACCTVERIFY."""
    statement = await bank_client.statement(account, passcode)
    return [e.amount for e in statement.entries if e.description == "TRANSAKT ACCTVERIFY"]


def wrong_pair(right: list[int]) -> list[int]:
    """Two amounts that are not the right ones in any order."""
    wrong = [amount for amount in range(1, 100) if amount not in right][:2]
    return wrong


def parse_rfc3339(value: str) -> datetime:
    assert value.endswith("Z"), value
    return datetime.fromisoformat(value[:-1] + "+00:00")


async def test_the_whole_flow_through_the_client(bank_client: BankClient) -> None:
    opened = await bank_client.create_account("José Müller", "EUR", 1_000)
    assert opened.passcode is not None
    started = await bank_client.start_verification("v-flow", opened.account, "jose muller")
    assert started == AccountVerification(
        id="v-flow",
        account=opened.account,
        name="José Müller",  # the holder's name as the bank holds it
        currency="EUR",
        status="pending",
        attempts_left=3,
        expires_at=started.expires_at,
    )
    expires = parse_rfc3339(started.expires_at)
    assert timedelta(days=7) - timedelta(minutes=1) < expires - datetime.now(UTC)
    assert expires - datetime.now(UTC) <= timedelta(days=7)

    # Only the holder sees the amounts: exactly two distinct ones, each 1-99 minor units,
    # and the balance went up by both.
    amounts = await micro_deposits(bank_client, opened.account, opened.passcode)
    assert len(amounts) == 2 and len(set(amounts)) == 2
    assert all(1 <= amount <= 99 for amount in amounts)
    account = await bank_client.get_account(opened.account)
    assert account is not None and account.balance == 1_000 + sum(amounts)

    wrong = await bank_client.confirm_verification("v-flow", wrong_pair(amounts))
    assert (wrong.status, wrong.attempts_left) == ("pending", 2)
    right = await bank_client.confirm_verification("v-flow", list(reversed(amounts)))
    assert (right.status, right.attempts_left) == ("verified", 2)
    assert right.verified
    # Once verified, nothing is consumed any more, right or wrong.
    again = await bank_client.confirm_verification("v-flow", wrong_pair(amounts))
    assert again == right
    assert await bank_client.get_verification("v-flow") == right


async def test_three_wrong_answers_fail_it_for_good(bank_client: BankClient) -> None:
    opened = await bank_client.create_account("Ada Lovelace", "EUR", 0)
    assert opened.passcode is not None
    await bank_client.start_verification("v-fail", opened.account, "Ada Lovelace")
    amounts = await micro_deposits(bank_client, opened.account, opened.passcode)
    left = [
        (await bank_client.confirm_verification("v-fail", wrong_pair(amounts))).attempts_left
        for _ in range(3)
    ]
    assert left == [2, 1, 0]
    failed = await bank_client.get_verification("v-fail")
    assert failed is not None and (failed.status, failed.attempts_left) == ("failed", 0)
    # The right amounts come too late: a failed verification stays failed.
    assert await bank_client.confirm_verification("v-fail", amounts) == failed


async def test_a_replayed_start_answers_the_stored_verification(
    bank_client: BankClient, raw: Raw, bank_db: asyncpg.Pool
) -> None:
    opened = await bank_client.create_account("Grace Hopper", "USD", 500)
    assert opened.passcode is not None
    first = await bank_client.start_verification("v-replay", opened.account, "Grace Hopper")
    again = await bank_client.start_verification("v-replay", opened.account, "Grace Hopper")
    assert again == first
    body = {"id": "v-replay", "account": opened.account, "name": "Grace Hopper"}
    async_answer = await raw("POST", "/api/v1/account-verifications", json=body)
    assert async_answer == (200, first.to_json())
    # Sent once: two micro-deposits, not six, and the balance moved once.
    amounts = await micro_deposits(bank_client, opened.account, opened.passcode)
    assert len(amounts) == 2
    account = await bank_client.get_account(opened.account)
    assert account is not None and account.balance == 500 + sum(amounts)
    stored = await bank_db.fetchval(f"SELECT count(*) FROM {SCHEMA}.micro_deposits")
    assert stored == 2
    # A replay answers the verification as it stands now.
    await bank_client.confirm_verification("v-replay", wrong_pair(amounts))
    replayed = await bank_client.start_verification("v-replay", opened.account, "Grace Hopper")
    assert replayed.attempts_left == 2


async def test_start_answers_201_then_200_replayed(bank_client: BankClient, raw: Raw) -> None:
    opened = await bank_client.create_account("Alan Turing", "GBP", 0)
    body = {"id": "v-raw", "account": opened.account, "name": "Alan Turing"}
    status, first = await raw("POST", "/api/v1/account-verifications", json=body)
    assert status == 201
    assert set(first) == {
        "id",
        "account",
        "name",
        "currency",
        "status",
        "attempts_left",
        "expires_at",
    }
    assert (first["status"], first["attempts_left"], first["currency"]) == ("pending", 3, "GBP")
    status, second = await raw("POST", "/api/v1/account-verifications", json=body)
    assert (status, second) == (200, first)
    status, shown = await raw("GET", "/api/v1/account-verifications/v-raw")
    assert (status, shown) == (200, first)


async def test_the_replay_says_so_in_a_header(bank_client: BankClient, bank: RunningBank) -> None:
    opened = await bank_client.create_account("Header Holder", "EUR", 0)
    body = {"id": "v-header", "account": opened.account, "name": "Header Holder"}
    headers = {"Authorization": f"Bearer {issue_service_token(SECRET)}"}
    url = bank.url + "/api/v1/account-verifications"
    async with aiohttp.ClientSession() as session:
        async with session.post(url, json=body, headers=headers) as response:
            assert response.status == 201
            assert "Idempotent-Replayed" not in response.headers
        async with session.post(url, json=body, headers=headers) as response:
            assert response.status == 200
            assert response.headers["Idempotent-Replayed"] == "true"


async def test_the_same_id_with_other_values_is_refused(bank_client: BankClient) -> None:
    first = await bank_client.create_account("Ada Lovelace", "EUR", 0)
    second = await bank_client.create_account("Ada Lovelace", "EUR", 0)
    await bank_client.start_verification("v-reuse", first.account, "Ada Lovelace")
    for account, name in [(second.account, "Ada Lovelace"), (first.account, "Ada King")]:
        with pytest.raises(BankRequestRejected) as caught:
            await bank_client.start_verification("v-reuse", account, name)
        assert (caught.value.status, caught.value.code) == (422, "idempotency_key_reused")
    untouched = await bank_client.get_account(second.account)
    assert untouched is not None and untouched.balance == 0


async def test_one_id_started_many_times_at_once_sends_once(
    bank_client: BankClient, bank_db: asyncpg.Pool
) -> None:
    opened = await bank_client.create_account("Race Holder", "EUR", 0)
    results = await asyncio.gather(
        *(
            bank_client.start_verification("v-race", opened.account, "Race Holder")
            for _ in range(20)
        )
    )
    assert len(set(results)) == 1
    assert await bank_db.fetchval(f"SELECT count(*) FROM {SCHEMA}.micro_deposits") == 2
    account = await bank_client.get_account(opened.account)
    deposited = await bank_db.fetchval(f"SELECT sum(amount) FROM {SCHEMA}.micro_deposits")
    assert account is not None and account.balance == deposited


@pytest.mark.parametrize(
    ("held", "given"),
    [
        ("José Müller", "JOSE MULLER"),
        ("José Müller", "jose\u00a0muller"),  # a no-break space
        ("Zoë O'Brien-Smith", "zoe o brien smith"),
        ("Anne  Marie", " anne marie "),
        ("Ærøskøbing Ltd.", "ærøskøbing ltd"),
        ("e\u0301mile", "Émile"),  # decomposed accent against a composed one
    ],
)
async def test_names_match_across_accents_case_and_spaces(
    bank_client: BankClient, held: str, given: str
) -> None:
    opened = await bank_client.create_account(held, "EUR", 0)
    started = await bank_client.start_verification("v-names", opened.account, given)
    assert started.status == "pending"
    found = await bank_client.verify_user(opened.account, name=given)
    assert found is not None and found.name_matches is True


async def test_a_name_that_is_not_the_holders_is_name_mismatch(
    bank_client: BankClient, raw: Raw, bank_db: asyncpg.Pool
) -> None:
    opened = await bank_client.create_account("José Müller", "EUR", 100)
    with pytest.raises(BankRequestRejected) as caught:
        await bank_client.start_verification("v-mismatch", opened.account, "Joseph Miller")
    assert (caught.value.status, caught.value.code) == (422, "name_mismatch")
    status, body = await raw(
        "POST",
        "/api/v1/account-verifications",
        json={"id": "v-mismatch", "account": opened.account, "name": "Mallory"},
    )
    assert (status, body["error"]["code"]) == (422, "name_mismatch")
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    # Nothing was sent or stored; the id is still free for the right name.
    assert await bank_db.fetchval(f"SELECT count(*) FROM {SCHEMA}.verifications") == 0
    account = await bank_client.get_account(opened.account)
    assert account is not None and account.balance == 100
    assert await bank_client.start_verification("v-mismatch", opened.account, "Jose Muller")


async def test_an_unknown_account_is_not_found(bank_client: BankClient) -> None:
    with pytest.raises(BankRequestRejected) as caught:
        await bank_client.start_verification("v-nobody", "DE00000000000000000000", "Nobody")
    assert (caught.value.status, caught.value.code) == (404, "not_found")


async def test_an_unknown_verification_is_404(bank_client: BankClient, raw: Raw) -> None:
    assert await bank_client.get_verification("v-never") is None
    with pytest.raises(BankRequestRejected) as caught:
        await bank_client.confirm_verification("v-never", [1, 2])
    assert (caught.value.status, caught.value.code) == (404, "not_found")
    status, body = await raw("GET", "/api/v1/account-verifications/v-never")
    assert (status, body["error"]["code"]) == (404, "not_found")
    status, body = await raw(
        "POST", "/api/v1/account-verifications/v-never/confirm", json={"amounts": [1, 2]}
    )
    assert (status, body["error"]["code"]) == (404, "not_found")


async def test_twenty_concurrent_wrong_answers_stop_at_zero(
    bank_client: BankClient, bank_db: asyncpg.Pool
) -> None:
    opened = await bank_client.create_account("Busy Holder", "EUR", 0)
    assert opened.passcode is not None
    await bank_client.start_verification("v-crowd", opened.account, "Busy Holder")
    wrong = wrong_pair(await micro_deposits(bank_client, opened.account, opened.passcode))
    answers = await asyncio.gather(
        *(bank_client.confirm_verification("v-crowd", wrong) for _ in range(20))
    )
    assert sorted(answer.attempts_left for answer in answers) == [0] * 18 + [1, 2]
    assert all(answer.attempts_left >= 0 for answer in answers)
    assert sum(answer.status == "pending" for answer in answers) == 2
    final = await bank_client.get_verification("v-crowd")
    assert final is not None and (final.status, final.attempts_left) == ("failed", 0)
    row = await bank_db.fetchrow(
        f"SELECT status, attempts_left FROM {SCHEMA}.verifications WHERE id = 'v-crowd'"
    )
    assert dict(row) == {"status": "failed", "attempts_left": 0}


async def test_past_its_expiry_it_is_expired(
    bank_client: BankClient, bank_db: asyncpg.Pool
) -> None:
    opened = await bank_client.create_account("Slow Holder", "EUR", 0)
    assert opened.passcode is not None
    await bank_client.start_verification("v-late", opened.account, "Slow Holder")
    amounts = await micro_deposits(bank_client, opened.account, opened.passcode)
    await bank_client.start_verification("v-late-get", opened.account, "Slow Holder")
    await bank_db.execute(
        f"UPDATE {SCHEMA}.verifications SET expires_at = now() - interval '1 second'"
    )
    # Even the right amounts: the verification is over, and nothing is consumed.
    late = await bank_client.confirm_verification("v-late", amounts)
    assert (late.status, late.attempts_left) == ("expired", 3)
    assert await bank_client.confirm_verification("v-late", amounts) == late
    # Reading it says so too, and records it.
    shown = await bank_client.get_verification("v-late-get")
    assert shown is not None and shown.status == "expired"
    assert (
        await bank_db.fetchval(f"SELECT status FROM {SCHEMA}.verifications WHERE id = 'v-late-get'")
        == "expired"
    )


async def test_a_bank_with_a_tiny_ttl_expires_them(
    make_bank: MakeBank, bank_client: BankClient
) -> None:
    url = await make_bank(verification_ttl=0.2)
    opened = await bank_client.create_account("Quick Holder", "EUR", 0)
    async with BankClient(url, SECRET, timeout=5.0) as client:
        started = await client.start_verification("v-tiny", opened.account, "Quick Holder")
        assert started.status == "pending"
        assert parse_rfc3339(started.expires_at) - datetime.now(UTC) < timedelta(seconds=1)
        statuses = []
        for _ in range(500):  # poll the state for up to about five seconds
            shown = await client.get_verification("v-tiny")
            assert shown is not None
            statuses.append(shown.status)
            if shown.status != "pending":
                break
            await asyncio.sleep(0.01)
        assert statuses[-1] == "expired"


@pytest.mark.parametrize("ttl", [0, -1.0, float("nan")])
def test_a_ttl_must_be_positive(bank_settings: Settings, ttl: float) -> None:
    with pytest.raises(ValueError, match="verification_ttl"):
        create_app(bank_settings.bank, "postgresql://unused", verification_ttl=ttl)


async def test_micro_deposits_are_not_transfers(bank_client: BankClient, raw: Raw) -> None:
    # Reconciliation compares this list with the wallet's ledger: the bank's own credits to
    # prove control are none of the wallet's business.
    opened = await bank_client.create_account("Reconciled", "EUR", 1_000)
    made = await bank_client.transfer("t-real", opened.account, "debit", 100, "EUR")
    await bank_client.start_verification("v-hidden", opened.account, "Reconciled")
    assert await bank_client.list_transfers(opened.account) == [made]
    status, page = await raw("GET", f"/api/v1/accounts/{opened.account}/transfers")
    assert status == 200 and [item["id"] for item in page["items"]] == ["t-real"]


@pytest.mark.parametrize(
    "amounts",
    [[1], [1, 2, 3], [], [0, 5], [-1, 5], [1.5, 2], ["1", "2"], [True, 2], None, "12", {"a": 1}],
)
async def test_bad_confirmations_are_422_and_consume_nothing(
    bank_client: BankClient, raw: Raw, amounts: object
) -> None:
    opened = await bank_client.create_account("Careful Holder", "EUR", 0)
    await bank_client.start_verification("v-bad", opened.account, "Careful Holder")
    status, body = await raw(
        "POST", "/api/v1/account-verifications/v-bad/confirm", json={"amounts": amounts}
    )
    assert (status, body["error"]["code"]) == (422, "validation_error")
    shown = await bank_client.get_verification("v-bad")
    assert shown is not None and shown.attempts_left == 3


@pytest.mark.parametrize(
    "changes",
    [
        {"id": ""},
        {"id": "x" * 256},
        {"id": "é-not-ascii"},
        {"id": "tab\there"},
        {"id": 7},
        {"name": ""},
        {"name": "Ada\u202eecalovoL"},  # a right-to-left override
        {"name": "Ada\u200bLovelace"},  # a zero-width space
        {"name": None},
        {"account": ""},
        {"account": 5},
    ],
)
async def test_bad_starts_are_422(
    bank_client: BankClient, raw: Raw, changes: dict[str, object]
) -> None:
    opened = await bank_client.create_account("Ada Lovelace", "EUR", 0)
    body = {"id": "v-ok", "account": opened.account, "name": "Ada Lovelace", **changes}
    status, answer = await raw("POST", "/api/v1/account-verifications", json=body)
    assert (status, answer["error"]["code"]) == (422, "validation_error"), answer
    field = next(iter(changes))
    assert answer["error"].get("field") == field


async def test_ids_with_path_characters_round_trip(bank_client: BankClient) -> None:
    opened = await bank_client.create_account("Odd Ids", "EUR", 0)
    odd = "wallet/../v 1?#%"
    started = await bank_client.start_verification(odd, opened.account, "Odd Ids")
    assert started.id == odd
    assert await bank_client.get_verification(odd) == started
    confirmed = await bank_client.confirm_verification(odd, [1, 1])
    assert confirmed.id == odd and confirmed.attempts_left == 2


async def test_faults_reach_verifications_like_every_service_call(
    bank_client: BankClient,
) -> None:
    opened = await bank_client.create_account("Down Holder", "EUR", 0)
    await bank_client.set_faults(refuse_all=True)
    with pytest.raises(BankUnavailable):
        await bank_client.start_verification("v-down", opened.account, "Down Holder")
    await bank_client.set_faults(refuse_all=False)
    assert await bank_client.get_verification("v-down") is None


async def test_verifications_need_the_service_token(raw: Raw) -> None:
    for method, path in [
        ("POST", "/api/v1/account-verifications"),
        ("GET", "/api/v1/account-verifications/v-1"),
        ("POST", "/api/v1/account-verifications/v-1/confirm"),
    ]:
        status, body = await raw(method, path, json={}, token=None)
        assert (status, body["error"]["code"]) == (401, "unauthorized")


async def test_metrics_count_verifications(bank_client: BankClient, raw: Raw) -> None:
    opened = await bank_client.create_account("Counted", "EUR", 0)
    await bank_client.start_verification("v-count", opened.account, "Counted")
    await bank_client.confirm_verification("v-count", [1, 1])
    _, text = await raw("GET", "/metrics", token=None)
    assert 'bank_account_verifications_total{event="started"}' in text
    assert 'bank_account_verifications_total{event="confirm_pending"}' in text


async def test_a_faulty_bank_does_not_change_these_rules(make_bank: MakeBank) -> None:
    # make_bank with faults only (the old call shape) still works.
    url = await make_bank(Faults(refuse_all=True))
    async with BankClient(url, SECRET, timeout=5.0) as client:
        with pytest.raises(BankUnavailable):
            await client.get_verification("v-any")
