"""Whose bank account is it? Sign-up, the micro-deposit proof, one account per user, approvals."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from httpkit import PASSWORD, Api, MakeUser, Person, unique_email
from trustkit import link_bank_account, micro_deposits

from transakt.gateway import BankClient

OpenAccount = Callable[..., Awaitable[str]]
DEPOSITS = "/api/v1/deposits"
WITHDRAWALS = "/api/v1/withdrawals"


def _signup(account: str, name: str, email: str | None = None) -> dict[str, str]:
    return {
        "email": email or unique_email(),
        "password": PASSWORD,
        "name": name,
        "bank_account": account,
    }


async def _login(api: Api, email: str) -> str:
    answer = await api.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert answer.status == 200, answer.text
    return str(answer.body["access_token"])


def _money(person: Person, amount: int = 1_000) -> dict[str, object]:
    return {"wallet": person.wallet_id, "amount": amount, "currency": person.wallet["currency"]}


async def test_a_strangers_account_under_another_name_is_refused_like_an_unknown_one(
    api: Api, open_bank_account: OpenAccount
) -> None:
    victim = await open_bank_account("Victoria Holder", "EUR", 500_000)
    email = unique_email()
    stranger = await api.post("/api/v1/auth/signup", json=_signup(victim, "Mallory", email))
    unknown = await api.post(
        "/api/v1/auth/signup", json=_signup("DE99999999999999999999", "Mallory")
    )
    assert (stranger.status, stranger.error_code) == (422, "bank_account_invalid")
    # One answer for both: the form tells nobody whose account is whose.
    assert stranger.body == unknown.body
    login = await api.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status == 401  # nobody was created


async def test_names_match_as_banks_match_them_and_the_bank_s_spelling_is_kept(
    api: Api, open_bank_account: OpenAccount
) -> None:
    account = await open_bank_account("José Müller-Lüdenscheidt", "EUR")
    answer = await api.post(
        "/api/v1/auth/signup",
        json=_signup(account, "jose\u00a0MULLER  ludenscheidt"),  # no-break space, no accents
    )
    assert answer.status == 201, answer.text
    # What counterparties see is the holder's name as the bank holds it.
    assert answer.body["user"]["name"] == "José Müller-Lüdenscheidt"


async def test_the_right_name_without_the_proof_moves_no_money(
    api: Api, make_user: MakeUser, bank_client: BankClient
) -> None:
    person = await make_user(linked=False, bank_balance=100_000)
    bank_before = (await bank_client.get_account(person.bank_account)).balance  # type: ignore[union-attr]
    link = await api.get("/api/v1/bank-account", token=person.token)
    assert link.body["status"] == "pending" and link.body["verification_started"] is True
    assert link.body["account"] == "•••• " + person.bank_account[-4:]
    for path in (DEPOSITS, WITHDRAWALS):
        answer = await api.post(path, token=person.token, json=_money(person))
        assert (answer.status, answer.error_code) == (403, "bank_account_not_linked"), path
    after = await bank_client.get_account(person.bank_account)
    assert after is not None and after.balance == bank_before
    wallet = await api.get(f"/api/v1/wallets/{person.wallet_id}", token=person.token)
    assert (wallet.body["balance"], wallet.body["pending_in"], wallet.body["pending_out"]) == (
        0,
        0,
        0,
    )


async def test_wrong_amounts_count_down_to_failure_and_a_new_verification_links(
    api: Api, make_user: MakeUser, bank_client: BankClient, bank_passcodes: dict[str, str]
) -> None:
    person = await make_user(linked=False, bank_balance=100_000)
    passcode = bank_passcodes[person.bank_account]
    first, second = await micro_deposits(bank_client, person.bank_account, passcode)
    wrong = [first % 99 + 1, second]  # one of the two is off
    if sorted(wrong) == sorted([first, second]):
        wrong = [first, second % 99 + 1]
    for left in (2, 1):
        answer = await api.post(
            "/api/v1/bank-account/confirm", token=person.token, json={"amounts": wrong}
        )
        assert (answer.status, answer.error_code) == (422, "verification_failed")
        assert answer.body["error"]["attempts_left"] == left
    last = await api.post(
        "/api/v1/bank-account/confirm", token=person.token, json={"amounts": wrong}
    )
    assert last.body["error"]["attempts_left"] == 0
    # The right amounts are too late now: that verification is spent.
    late = await api.post(
        "/api/v1/bank-account/confirm", token=person.token, json={"amounts": [first, second]}
    )
    assert late.error_code == "verification_failed"
    status = await api.get("/api/v1/bank-account", token=person.token)
    assert status.body["status"] == "failed"

    again = await api.post("/api/v1/bank-account/verification", token=person.token)
    assert again.status == 202, again.text
    assert again.body["status"] == "pending" and again.body["attempts_left"] == 3
    linked = await link_bank_account(api, bank_client, person.token, person.bank_account, passcode)
    assert (linked.status, linked.body["status"]) == (200, "linked")
    deposit = await api.post(DEPOSITS, token=person.token, json=_money(person))
    assert deposit.status == 202, deposit.text


async def test_one_account_backs_one_user_until_its_holder_approves_another(
    api: Api,
    make_user: MakeUser,
    bank_client: BankClient,
    bank_passcodes: dict[str, str],
) -> None:
    holder = await make_user(name="Hannah Holder", bank_balance=50_000)
    partner_email = unique_email("partner")
    taken = await api.post(
        "/api/v1/auth/signup", json=_signup(holder.bank_account, "Hannah Holder", partner_email)
    )
    assert (taken.status, taken.error_code) == (409, "bank_account_taken")

    approval = await api.post(
        "/api/v1/bank-account/approvals", token=holder.token, json={"email": partner_email}
    )
    assert approval.status == 201, approval.text
    partner = await api.post(
        "/api/v1/auth/signup", json=_signup(holder.bank_account, "Hannah Holder", partner_email)
    )
    assert partner.status == 201, partner.text
    token = await _login(api, partner_email)
    passcode = bank_passcodes[holder.bank_account]
    linked = await link_bank_account(api, bank_client, token, holder.bank_account, passcode)
    assert (linked.status, linked.body["status"]) == (200, "linked")
    wallet = partner.body["wallets"][0]
    deposit = await api.post(
        DEPOSITS, token=token, json={"wallet": wallet["id"], "amount": 100, "currency": "EUR"}
    )
    assert deposit.status == 202


async def test_two_pending_users_on_one_account_only_the_first_to_prove_it_links(
    api: Api,
    open_bank_account: OpenAccount,
    bank_client: BankClient,
    bank_passcodes: dict[str, str],
) -> None:
    account = await open_bank_account("Shared Account", "EUR")
    passcode = bank_passcodes[account]
    emails = [unique_email("first"), unique_email("second")]
    for email in emails:
        answer = await api.post(
            "/api/v1/auth/signup", json=_signup(account, "Shared Account", email)
        )
        assert answer.status == 201, answer.text  # nobody holds it linked yet
    first, second = [await _login(api, email) for email in emails]
    # Each verification sent its own pair: the statement lists the newest first.
    statement = await bank_client.statement(account, passcode)
    pairs = [e.amount for e in statement.entries if e.description == "TRANSAKT ACCTVERIFY"]
    second_pair, first_pair = pairs[:2], pairs[2:4]
    linked = await api.post(
        "/api/v1/bank-account/confirm", token=first, json={"amounts": first_pair}
    )
    assert linked.body["status"] == "linked", linked.text
    refused = await api.post(
        "/api/v1/bank-account/confirm", token=second, json={"amounts": second_pair}
    )
    assert (refused.status, refused.error_code) == (409, "bank_account_taken")
    status = await api.get("/api/v1/bank-account", token=second)
    assert status.body["status"] != "linked"


async def test_deposits_and_withdrawals_only_in_the_bank_account_s_currency(
    api: Api, make_user: MakeUser
) -> None:
    person = await make_user(bank_balance=10_000)
    usd = await api.post("/api/v1/wallets", token=person.token, json={"currency": "USD"})
    for path in (DEPOSITS, WITHDRAWALS):
        answer = await api.post(
            path,
            token=person.token,
            json={"wallet": usd.body["id"], "amount": 100, "currency": "USD"},
        )
        assert (answer.status, answer.error_code) == (422, "currency_mismatch"), path
        assert "EUR" in answer.body["error"]["message"]


async def test_signup_asks_the_bank_before_saying_an_email_is_taken(
    api: Api, make_user: MakeUser, open_bank_account: OpenAccount
) -> None:
    existing = await make_user()
    # A garbage account with a taken address: the answer is about the account.
    answer = await api.post(
        "/api/v1/auth/signup",
        json=_signup("DE00000000000000000000", "Test Person", existing.email),
    )
    assert (answer.status, answer.error_code) == (422, "bank_account_invalid")
    # Only with an account the bank vouches for does the address come up.
    account = await open_bank_account("Test Person", "EUR")
    taken = await api.post(
        "/api/v1/auth/signup", json=_signup(account, "Test Person", existing.email)
    )
    assert (taken.status, taken.error_code) == (409, "email_taken")
