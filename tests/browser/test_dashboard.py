"""The dashboard in real Chromium: sessions, payments, live balances, history, errors, safety."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg
from httpkit import PASSWORD, Api, MakeUser, unique_email
from trustkit import mailed_code, micro_deposits

from transakt.config import Settings
from transakt.gateway import BankClient

from .helpers import (
    HOSTILE_TEXT,
    PHONE,
    OpenPage,
    Screenshot,
    expect,
    figure,
    history,
    log_in,
    open_tab,
    review_payment,
    wallet_card,
)

OpenBankAccount = Callable[..., Awaitable[str]]


async def test_sign_up_log_out_and_log_in_again(
    open_page: OpenPage,
    open_bank_account: OpenBankAccount,
    screenshot: Screenshot,
    bank_client: BankClient,
    bank_passcodes: dict[str, str],
    wallet_pool: asyncpg.Pool,
) -> None:
    page = await open_page()
    await expect(page.get_by_role("heading", name="Log in")).to_be_focused()
    await screenshot(page, "login")

    await page.get_by_role("button", name="Create an account").click()
    signup = page.get_by_role("region", name="Create an account")
    email = unique_email("browser")
    await signup.get_by_label("Name").fill("Ada Lovelace")
    await signup.get_by_label("E-mail").fill(email)
    await signup.get_by_label("Password").fill(PASSWORD)
    await signup.get_by_label("Bank account").fill("XX0000000000")
    await signup.get_by_role("button", name="Sign up").click()
    # The bank does not know that account: the API's refusal is said in words.
    await expect(signup.get_by_role("alert")).to_contain_text("bank")

    # Another holder's account: the bank does not vouch for the name either.
    strangers = await open_bank_account("Grace Hopper", "GBP")
    await signup.get_by_label("Bank account").fill(strangers)
    await signup.get_by_role("button", name="Sign up").click()
    await expect(signup.get_by_role("alert")).to_contain_text("could not confirm")

    account = await open_bank_account("Ada Lovelace", "GBP")
    await signup.get_by_label("Bank account").fill(account)
    await signup.get_by_role("button", name="Sign up").click()
    await expect(figure(page, "balance", "GBP")).to_have_text("0.00 GBP")
    await expect(page.get_by_text(f"Ada Lovelace · {email}")).to_be_visible()

    # Two proofs to finish: the code mailed to the address, the deposits in the statement.
    setup = page.get_by_role("region", name="Finish setting up")
    await expect(setup).to_be_visible()
    await open_tab(page, "Bank")
    bank = page.get_by_role("region", name="Bank", exact=True)
    await expect(bank.get_by_role("button", name="Deposit from bank")).to_be_disabled()
    await screenshot(page, "finish-setting-up", setup)
    await setup.get_by_label("Code").fill("000000")
    await setup.get_by_role("button", name="Verify e-mail").click()
    await expect(setup.get_by_role("alert").first).to_contain_text("not the code")
    user_id = await wallet_pool.fetchval("SELECT id FROM users WHERE email = $1", email)
    await setup.get_by_label("Code").fill(await mailed_code(wallet_pool, user_id))
    await setup.get_by_role("button", name="Verify e-mail").click()
    await expect(setup.get_by_role("heading", name="Verify your e-mail")).to_be_hidden()

    first, second = await micro_deposits(bank_client, account, bank_passcodes[account])
    await setup.get_by_label("First amount").fill(f"0.{first:02d}")
    await setup.get_by_label("Second amount").fill(f"0.{second:02d}")
    await setup.get_by_role("button", name="Link account").click()
    await expect(setup).to_be_hidden()
    await expect(bank.get_by_role("button", name="Deposit from bank")).to_be_enabled()

    await page.get_by_role("button", name="Log out").click()
    login = page.get_by_role("region", name="Log in")
    await expect(login.get_by_role("status")).to_have_text("You have logged out.")
    assert await page.evaluate("sessionStorage.length") == 0
    await expect(wallet_card(page, "GBP")).to_have_count(0)

    await login.get_by_label("E-mail").fill(email)
    await login.get_by_label("Password").fill("not the password")
    await login.get_by_role("button", name="Log in").click()
    await expect(login.get_by_role("alert")).to_contain_text("password")

    await log_in(page, email, PASSWORD)
    await expect(figure(page, "balance", "GBP")).to_have_text("0.00 GBP")
    # A reload keeps the session of this tab (sessionStorage), and nothing else.
    await page.reload()
    await expect(figure(page, "balance", "GBP")).to_have_text("0.00 GBP")
    assert "token" not in page.url

    # A second wallet in a currency without decimals; the bank account's currency is offered
    # first, then the one of the browser's region (en-GB), never the alphabet's first (AED).
    await open_tab(page, "Home")
    await expect(page.get_by_label("Open a wallet in").locator("option").first).to_have_text("EUR")
    await page.get_by_label("Open a wallet in").select_option("JPY")
    await page.get_by_role("button", name="Open wallet").click()
    await expect(figure(page, "balance", "JPY")).to_have_text("0 JPY")
    await expect(page.get_by_label("From wallet")).to_contain_text("JPY wallet")


async def test_a_payment_changes_the_other_users_balance_without_a_reload(
    open_page: OpenPage, make_user: MakeUser, screenshot: Screenshot
) -> None:
    alice = await make_user(balance=10_000, name="Alice Liddell")
    bob = await make_user(name="Bob Cratchit")
    alice_page = await open_page()
    await log_in(alice_page, alice.email, alice.password)
    bob_page = await open_page()
    await log_in(bob_page, bob.email, bob.password)
    # Bob's feed is up before Alice pays: what follows arrives as a push.
    await expect(bob_page.get_by_text("Live", exact=True)).to_be_visible()
    await expect(figure(bob_page, "balance")).to_have_text("0.00 EUR")

    confirmation = await review_payment(alice_page, bob.email, "12.34", "Lunch at the pier")
    await expect(confirmation).to_contain_text("12.34 EUR")
    await expect(confirmation).to_contain_text(bob.email)
    # The name the payee's bank confirmed, before anything is sent.
    await expect(confirmation).to_contain_text("Bob Cratchit")
    await expect(confirmation.get_by_role("button", name="Confirm and send")).to_be_focused()
    await screenshot(
        alice_page, "send-confirmation", alice_page.get_by_role("region", name="Send money")
    )
    await confirmation.get_by_role("button", name="Confirm and send").click()
    await expect(alice_page.get_by_text(f"Sent 12.34 EUR to {bob.email}.")).to_be_visible()
    await expect(figure(alice_page, "balance")).to_have_text("87.66 EUR")

    await expect(figure(bob_page, "balance")).to_have_text("12.34 EUR")
    await expect(figure(bob_page, "available")).to_have_text("12.34 EUR")
    await expect(history(bob_page).first).to_contain_text("Lunch at the pier")
    await expect(history(bob_page).first).to_contain_text("+12.34 EUR")
    await expect(wallet_card(bob_page).get_by_role("img")).to_have_attribute(
        "aria-label", "Balance over the last 30 days: from 0.00 EUR to 12.34 EUR"
    )
    # Alice's activity names the person she paid, not a wallet id.
    await expect(history(alice_page).first).to_contain_text("Payment to Bob Cratchit")
    await open_tab(alice_page, "Home")
    await screenshot(alice_page, "dashboard")


async def test_memo_and_name_render_as_text_never_as_html(
    open_page: OpenPage, make_user: MakeUser
) -> None:
    mallory = await make_user(balance=5_000, name=HOSTILE_TEXT)
    bob = await make_user()
    page = await open_page()
    await log_in(page, mallory.email, mallory.password)
    await expect(page.get_by_text(f"{HOSTILE_TEXT} · {mallory.email}")).to_be_visible()

    confirmation = await review_payment(page, bob.wallet_id, "1", HOSTILE_TEXT)
    await expect(confirmation.get_by_text(HOSTILE_TEXT, exact=True)).to_be_visible()
    await confirmation.get_by_role("button", name="Confirm and send").click()
    await open_tab(page, "Activity")
    await expect(history(page).first.get_by_text(HOSTILE_TEXT, exact=True)).to_be_visible()
    # Paid by wallet id: the history names the payee as their bank confirmed it.
    await expect(history(page).first).to_contain_text(f"Payment to {bob.name}")
    # Only the two images the page draws itself (the logo and the balance chart).
    assert await page.locator("img[src='x'], [onerror]").count() == 0


async def test_history_pages_back_in_time(
    open_page: OpenPage, make_user: MakeUser, api: Api, screenshot: Screenshot
) -> None:
    alice = await make_user(balance=100_000)
    bob = await make_user()
    for number in range(23):
        answer = await api.post(
            "/api/v1/transfers",
            token=alice.token,
            json={
                "from_wallet": alice.wallet_id,
                "to_email": bob.email,
                "amount": 100 + number,
                "currency": "EUR",
                "memo": f"payment {number}",
            },
        )
        assert answer.status == 201, answer.text
    page = await open_page()
    await log_in(page, alice.email, alice.password)
    items = history(page)
    await expect(items).to_have_count(10)
    await expect(items.first).to_contain_text("payment 22")
    await expect(items.first).to_contain_text("-1.22 EUR")
    await open_tab(page, "Activity")
    await screenshot(page, "history")
    older = page.get_by_role("button", name="Load older")
    await older.click()
    await expect(items).to_have_count(20)
    await older.click()
    # 23 payments and the funding deposit; then there is nothing older to load.
    await expect(items).to_have_count(24)
    await expect(items.last).to_contain_text("Deposit from bank")
    await expect(older).to_be_hidden()
    # 1000.00 - (1.00 + 1.01 + ... + 1.22) = 1000.00 - 25.53
    await expect(figure(page, "balance")).to_have_text("974.47 EUR")


async def test_refusals_and_mistakes_are_said_in_words(
    open_page: OpenPage, make_user: MakeUser
) -> None:
    alice = await make_user(balance=500)
    bob = await make_user()
    page = await open_page()
    await log_in(page, alice.email, alice.password)
    await open_tab(page, "Send")
    form = page.get_by_role("region", name="Send money")

    # Checked in the page before anything is sent.
    await form.get_by_label("To (e-mail or wallet id)").fill(bob.email)
    await form.get_by_label("Amount").fill("1.005")
    await form.get_by_role("button", name="Review payment").click()
    await expect(form.get_by_role("alert")).to_have_text("EUR has at most 2 decimals.")
    await expect(form.get_by_label("Amount")).to_be_focused()

    # Nobody has that address: said before the confirmation, with nothing sent.
    await form.get_by_label("To (e-mail or wallet id)").fill(unique_email("nobody"))
    await form.get_by_label("Amount").fill("1.00")
    await form.get_by_role("button", name="Review payment").click()
    await expect(form.get_by_role("alert")).to_contain_text("Nobody has this e-mail address")
    await expect(form.get_by_label("To (e-mail or wallet id)")).to_be_focused()
    await expect(page.get_by_role("group", name="Confirm payment")).to_be_hidden()

    confirmation = await review_payment(page, bob.email, "1.00")
    await page.keyboard.press("Escape")
    await expect(confirmation).to_be_hidden()
    await expect(form.get_by_label("Amount")).to_be_focused()

    # The server cannot be reached: still a sentence, never a blank page.
    confirmation = await review_payment(page, bob.email, "1.00")
    await page.context.set_offline(True)
    await confirmation.get_by_role("button", name="Confirm and send").click()
    await expect(confirmation.get_by_role("alert")).to_have_text(
        "The server cannot be reached; check the connection and try again."
    )
    await page.context.set_offline(False)
    # The same reviewed payment, retried with its Idempotency-Key, goes through once.
    await confirmation.get_by_role("button", name="Confirm and send").click()
    await expect(figure(page, "balance")).to_have_text("4.00 EUR")


async def test_an_expired_session_returns_to_the_login_form(
    open_page: OpenPage, make_user: MakeUser, wallet_settings: Settings
) -> None:
    person = await make_user()
    page = await open_page(path=None)
    await page.clock.install()
    await page.goto("/")
    await log_in(page, person.email, person.password)
    await page.clock.fast_forward((wallet_settings.jwt.ttl_seconds + 5) * 1000)
    login = page.get_by_role("region", name="Log in")
    await expect(login.get_by_role("status")).to_have_text(
        "Your session has expired. Please log in again."
    )
    await expect(wallet_card(page)).to_have_count(0)
    assert await page.evaluate("sessionStorage.length") == 0


async def test_a_refused_token_returns_to_the_login_form(
    open_page: OpenPage, make_user: MakeUser
) -> None:
    person = await make_user()
    page = await open_page()
    await log_in(page, person.email, person.password)
    # The server stops accepting the token (here: its signature no longer matches).
    await page.evaluate(
        """() => {
            const saved = JSON.parse(sessionStorage.getItem("transakt.session"));
            saved.token = saved.token.slice(0, -6) + "AAAAAA";
            sessionStorage.setItem("transakt.session", JSON.stringify(saved));
        }"""
    )
    await page.reload()
    login = page.get_by_role("region", name="Log in")
    await expect(login.get_by_role("status")).to_have_text(
        "Your session has ended. Please log in again."
    )
    assert await page.evaluate("sessionStorage.length") == 0


async def test_phone_width_and_keyboard_only(
    open_page: OpenPage, make_user: MakeUser, screenshot: Screenshot
) -> None:
    person = await make_user(balance=123_456)
    bob = await make_user()
    page = await open_page(PHONE)
    login = page.get_by_role("region", name="Log in")
    await expect(login.get_by_role("heading", name="Log in")).to_be_focused()
    await page.keyboard.press("Tab")
    await expect(login.get_by_label("E-mail")).to_be_focused()
    await page.keyboard.type(person.email)
    await page.keyboard.press("Tab")
    await page.keyboard.type(person.password)
    await page.keyboard.press("Enter")
    await expect(figure(page, "balance")).to_have_text("1,234.56 EUR")
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    await screenshot(page, "phone")

    # The tabs work from the keyboard too: focus the selected tab, arrow right to Send.
    await page.get_by_role("tab", name="Home").focus()
    await page.keyboard.press("ArrowRight")
    await expect(page.get_by_role("tab", name="Send")).to_be_focused()
    await expect(page.get_by_role("tab", name="Send")).to_have_attribute("aria-selected", "true")
    form = page.get_by_role("region", name="Send money")
    await form.get_by_label("To (e-mail or wallet id)").focus()
    await page.keyboard.type(bob.email)
    await page.keyboard.press("Tab")
    await page.keyboard.type("0.56")
    await page.keyboard.press("Enter")
    confirm = page.get_by_role("button", name="Confirm and send")
    await expect(confirm).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(figure(page, "balance")).to_have_text("1,234.00 EUR")


async def test_money_is_formatted_and_parsed_without_floats(open_page: OpenPage) -> None:
    page = await open_page()
    results = await page.evaluate(
        """async () => {
            const { formatMoney, parseAmount } = await import("/static/money.js");
            const attempt = (text, currency, locale) => {
                try { return parseAmount(text, currency, locale); }
                catch (error) { return error.message; }
            };
            return {
                formatted: [
                    formatMoney(123456, "EUR"), formatMoney(5, "EUR"), formatMoney(0, "EUR"),
                    formatMoney(1234, "JPY"), formatMoney(1, "BHD"),
                    formatMoney(999999999999999, "EUR"), formatMoney(-1050, "EUR"),
                    formatMoney(1050, "EUR", { signed: true }),
                ],
                parsed: [
                    attempt("12.34", "EUR"), attempt("0.29", "EUR"), attempt("1.1", "EUR"),
                    attempt(" 19.99 ", "EUR"), attempt("1.005", "BHD"), attempt("1200", "JPY"),
                    attempt("10000000000000.00", "EUR"), attempt("1,50", "EUR"),
                    attempt("1,234.50", "EUR"), attempt("1.234,50", "EUR"),
                    attempt("1,234", "EUR"), attempt("12,5", "EUR", "de-DE"),
                ],
                refused: [
                    attempt("12.345", "EUR"), attempt("1.5", "JPY"), attempt("1,2,3", "EUR"),
                    attempt("abc", "EUR"), attempt("0.00", "EUR"), attempt("-5", "EUR"),
                    attempt("10000000000000.01", "EUR"), attempt("", "EUR"),
                ],
            };
        }"""
    )
    assert results["formatted"] == [
        "1,234.56 EUR",
        "0.05 EUR",
        "0.00 EUR",
        "1,234 JPY",
        "0.001 BHD",
        "9,999,999,999,999.99 EUR",
        "-10.50 EUR",
        "+10.50 EUR",
    ]
    # 0.29 * 100 is 28.999999999999996 in floating point; the page says 29.
    # A decimal comma is read as one wherever it cannot be a thousands separator.
    assert results["parsed"] == [
        1234,
        29,
        110,
        1999,
        1005,
        1200,
        10**15,
        150,
        123450,
        123450,
        123400,
        1250,
    ]
    assert results["refused"] == [
        "EUR has at most 2 decimals.",
        "JPY has no decimals: enter a whole number.",
        "Enter an amount like 12.34.",
        "Enter an amount like 12.34.",
        "Enter an amount above zero.",
        "Enter an amount like 12.34.",
        "That is more than the largest amount, 10,000,000,000,000.00 EUR.",
        "Enter an amount.",
    ]
