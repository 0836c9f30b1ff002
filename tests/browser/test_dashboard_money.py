"""The dashboard a person trusts with money: names before confirming, balances checked first,
holds, refunds, the bank's currency, locale amounts, filters, the phone, and accessibility."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from httpkit import Api, MakeUser

from transakt.gateway import BankClient

from .helpers import (
    PHONE,
    OpenPage,
    Screenshot,
    expect,
    figure,
    history,
    log_in,
    open_tab,
    operations,
    recent,
    review_payment,
)

# What a failing accessibility check names: the impact levels a person cannot work around.
BLOCKING_IMPACTS = {"serious", "critical"}


async def _pay(api: Api, payer: Any, to_email: str, amount: int, memo: str = "") -> dict[str, Any]:
    body: dict[str, Any] = {
        "from_wallet": payer.wallet_id,
        "to_email": to_email,
        "amount": amount,
        "currency": "EUR",
    }
    if memo:
        body["memo"] = memo
    answer = await api.post("/api/v1/transfers", token=payer.token, json=body)
    assert answer.status == 201, answer.text
    return dict(answer.body)


async def _accessibility_violations(page: Any) -> list[str]:
    """axe-core (bundled with the test dependency, nothing fetched) over the page as shown."""
    from axe_playwright_python.async_playwright import Axe

    results = await Axe().run(page)
    return [
        f"{violation['id']} ({violation['impact']}): {violation['help']} "
        f"at {[node['target'] for node in violation['nodes']][:3]}"
        for violation in results.response["violations"]
        if violation["impact"] in BLOCKING_IMPACTS
    ]


async def test_the_payees_verified_name_and_the_balance_are_checked_before_confirming(
    open_page: OpenPage, make_user: MakeUser, screenshot: Screenshot
) -> None:
    alice = await make_user(balance=2_000, name="Alice Liddell")
    bob = await make_user(name="Bob Cratchit")
    page = await open_page()
    await log_in(page, alice.email, alice.password)
    await open_tab(page, "Send")
    form = page.get_by_role("region", name="Send money")
    await expect(form.get_by_text("Available: 20.00 EUR")).to_be_visible()

    # More than the wallet can spend: refused in the form, no confirmation step to click.
    await form.get_by_label("To (e-mail or wallet id)").fill(bob.email)
    await form.get_by_label("Amount").fill("20.01")
    await form.get_by_role("button", name="Review payment").click()
    await expect(form.get_by_role("alert")).to_have_text(
        "Not enough money: your EUR wallet has 20.00 EUR available."
    )
    await expect(page.get_by_role("group", name="Confirm payment")).to_be_hidden()
    await expect(form.get_by_label("Amount")).to_be_focused()

    # Within it: the confirmation names the person their bank confirmed, with initials.
    confirmation = await review_payment(page, bob.email, "20.00", "Tea 🍵 and cake")
    await expect(confirmation.get_by_text("Bob Cratchit", exact=True)).to_be_visible()
    await expect(confirmation).to_contain_text(bob.email)
    await expect(confirmation).to_contain_text("BC")
    await expect(confirmation).to_contain_text("Left after0.00 EUR")
    await screenshot(page, "send-confirmation")
    await confirmation.get_by_role("button", name="Confirm and send").click()
    await expect(page.get_by_text(f"Sent 20.00 EUR to {bob.email}.")).to_be_visible()
    await expect(figure(page, "balance")).to_have_text("0.00 EUR")
    # The home view names him too, and the memo's emoji is kept as typed.
    await open_tab(page, "Home")
    await expect(recent(page).first).to_contain_text("Payment to Bob Cratchit")
    await expect(recent(page).first).to_contain_text("Tea 🍵 and cake")


async def test_bank_moves_are_offered_only_in_the_bank_accounts_currency(
    open_page: OpenPage, make_user: MakeUser, api: Api, screenshot: Screenshot
) -> None:
    person = await make_user(balance=1_000, name="Dora Currency")
    opened = await api.post(
        "/api/v1/wallets",
        token=person.token,
        json={"currency": "USD"},
        headers={"Idempotency-Key": "usd-wallet"},
    )
    assert opened.status == 201, opened.text
    page = await open_page()
    await log_in(page, person.email, person.password)
    await expect(figure(page, "balance", "USD")).to_have_text("0.00 USD")
    await open_tab(page, "Bank")
    bank = page.get_by_role("region", name="Bank", exact=True)
    await expect(bank).to_contain_text("holds EUR")
    options = bank.get_by_label("Wallet").locator("option")
    await expect(options).to_have_count(1)
    await expect(options).to_have_text(["EUR wallet"])
    await screenshot(page, "bank")


async def test_the_sandbox_bank_switch_and_limits_show_only_where_the_node_has_them(
    open_page: OpenPage,
    make_user: MakeUser,
    api: Api,
    bank_client: BankClient,
    screenshot: Screenshot,
) -> None:
    person = await make_user(balance=1_000, bank_balance=10_000)
    page = await open_page()
    await log_in(page, person.email, person.password)
    await expect(page.get_by_text("Live", exact=True)).to_be_visible()
    limits = await api.get(f"/api/v1/wallets/{person.wallet_id}/limits", token=person.token)
    panel = page.get_by_role("region", name="Spend limits")
    if limits.status == 404:
        await expect(panel).to_have_count(0)
    else:
        assert limits.status == 200, limits.text
        await panel.get_by_label("Daily limit").fill("7,50")
        await panel.get_by_role("button", name="Save limits").click()
        await expect(panel.get_by_label("Daily limit")).to_have_value("7.50")
        saved = await api.get(f"/api/v1/wallets/{person.wallet_id}/limits", token=person.token)
        assert saved.body["daily"] == 750, saved.text
        # The limit is checked before the confirmation, like the balance.
        await open_tab(page, "Send")
        form = page.get_by_role("region", name="Send money")
        await form.get_by_label("To (e-mail or wallet id)").fill(person.email)
        await form.get_by_label("Amount").fill("7.51")
        await form.get_by_role("button", name="Review payment").click()
        await expect(form.get_by_role("alert")).to_contain_text(
            "above your daily spend limit: 7.50 EUR left today"
        )
        await expect(page.get_by_role("group", name="Confirm payment")).to_be_hidden()
    await open_tab(page, "Bank")
    sandbox = await api.get("/api/v1/sandbox/bank", token=person.token)
    switch = page.get_by_role("region", name="Sandbox bank")
    if sandbox.status == 404:
        # Not a dev-mode node: no switch, and no error said about it.
        await expect(switch).to_have_count(0)
        await expect(page.locator("#notice")).to_be_hidden()
        return
    assert sandbox.status == 200, sandbox.text
    await expect(switch).to_contain_text("The sandbox bank is answering normally")
    try:
        # The newcomer's story: the bank goes down, a deposit waits, the bank comes back.
        await switch.get_by_label("The bank is").select_option("down")
        await switch.get_by_role("button", name="Set bank mode").click()
        await expect(switch.get_by_role("status")).to_contain_text("down")
        bank = page.get_by_role("region", name="Bank", exact=True)
        await bank.get_by_label("Amount").fill("4.00")
        await bank.get_by_role("button", name="Deposit from bank").click()
        await expect(operations(page).first).to_have_text("Deposit 4.00 EUR Pending")
        await screenshot(page, "sandbox-bank")
        await switch.get_by_label("The bank is").select_option("normal")
        await switch.get_by_role("button", name="Set bank mode").click()
        await expect(switch.get_by_role("status")).to_contain_text("answering normally")
        # The gateway's breaker lets the buffered deposit through on its next probe.
        await expect(operations(page).first).to_have_text("Deposit 4.00 EUR Posted", timeout=60_000)
        await expect(figure(page, "balance")).to_have_text("14.00 EUR")
    finally:
        # Whatever failed above, the session's bank is healthy again for the next test.
        await bank_client.set_faults(
            latency_ms=0, failure_rate=0.0, refuse_all=False, decline_all=False
        )


async def test_amounts_are_typed_the_way_the_locale_writes_them(
    open_page: OpenPage, make_user: MakeUser
) -> None:
    alice = await make_user(balance=500_000)
    bob = await make_user(name="Berta Beispiel")
    page = await open_page(locale="de-DE")
    await log_in(page, alice.email, alice.password)
    await open_tab(page, "Send")
    form = page.get_by_role("region", name="Send money")
    await expect(form.get_by_text("For example 12,34.")).to_be_visible()
    confirmation = await review_payment(page, bob.email, "1.234,50")
    await expect(confirmation).to_contain_text("1,234.50 EUR")
    await confirmation.get_by_role("button", name="Cancel").click()
    # A decimal comma is a decimal comma in any locale when it cannot be a thousands one.
    english = await open_page()
    await log_in(english, alice.email, alice.password)
    confirmation = await review_payment(english, bob.email, "12,50")
    await expect(confirmation).to_contain_text("12.50 EUR")
    await confirmation.get_by_role("button", name="Confirm and send").click()
    await expect(figure(english, "balance")).to_have_text("4,987.50 EUR")


async def test_a_hold_is_made_then_released_and_another_cancelled(
    open_page: OpenPage, make_user: MakeUser, screenshot: Screenshot
) -> None:
    alice = await make_user(balance=10_000, name="Alice Holder")
    bob = await make_user(name="Bob Payee")
    page = await open_page()
    await log_in(page, alice.email, alice.password)

    async def hold(amount: str) -> None:
        await open_tab(page, "Send")
        form = page.get_by_role("region", name="Send money")
        await form.get_by_label("Hold it: reserve now, release or cancel later").check()
        confirmation = await review_payment(page, bob.email, amount)
        await expect(confirmation).to_contain_text("Held for 7 days")
        await confirmation.get_by_role("button", name="Confirm and hold").click()
        await expect(page.get_by_role("status").filter(has_text="Holding")).to_contain_text(
            f"Holding {amount} EUR for Bob Payee"
        )

    await hold("30.00")
    holds = page.get_by_role("list", name="Holds").get_by_role("listitem")
    await expect(holds.first).to_contain_text("Hold to Bob Payee")
    await expect(holds.first).to_contain_text("Held")
    await expect(holds.first).to_contain_text("expires")
    # Reserved, not gone: the balance stays, what can be spent drops.
    await expect(figure(page, "balance")).to_have_text("100.00 EUR")
    await expect(figure(page, "available")).to_have_text("70.00 EUR")
    await screenshot(page, "holds")

    await holds.first.get_by_role("button", name="Release").click()
    await expect(holds.first).to_contain_text("Posted")
    # The button is gone with the hold's state: a keyboard user is left at the list's heading.
    await expect(page.get_by_role("heading", name="Holds")).to_be_focused()
    await expect(figure(page, "balance")).to_have_text("70.00 EUR")
    await expect(figure(page, "available")).to_have_text("70.00 EUR")

    await hold("10.00")
    await expect(figure(page, "available")).to_have_text("60.00 EUR")
    await holds.first.get_by_role("button", name="Cancel hold").click()
    await expect(holds.first).to_contain_text("Voided")
    await expect(figure(page, "available")).to_have_text("70.00 EUR")
    await expect(figure(page, "balance")).to_have_text("70.00 EUR")


async def test_the_payee_refunds_part_of_a_payment(
    open_page: OpenPage, make_user: MakeUser, api: Api
) -> None:
    alice = await make_user(balance=5_000, name="Alice Buyer")
    bob = await make_user(name="Bob Seller")
    paid = await _pay(api, alice, bob.email, 2_000, "Two books")
    page = await open_page()
    await log_in(page, bob.email, bob.password)
    await expect(figure(page, "balance")).to_have_text("20.00 EUR")
    item = recent(page).filter(has_text="Two books")
    # The payer is named as their bank confirmed it (history pages carry both holders' names).
    await expect(item).to_contain_text("Payment from Alice Buyer")
    await item.get_by_role("button", name="Refund").click()
    await item.get_by_label("Refund amount").fill("5,00")
    await item.get_by_role("button", name="Send refund").click()
    await expect(figure(page, "balance")).to_have_text("15.00 EUR")
    # Partly refunded, it may be refunded again: the focus is back on its Refund button, and
    # stays there once the list is refreshed with the refund (newest first).
    await expect(recent(page).first).to_contain_text("Refund to Alice Buyer")
    await expect(recent(page).first).to_contain_text("-5.00 EUR")
    await expect(recent(page).first.get_by_role("button")).to_have_count(0)
    await expect(item.get_by_role("button", name="Refund")).to_be_focused()
    refunds = await api.get(f"/api/v1/transfers/{paid['id']}/refunds", token=bob.token)
    assert refunds.status == 200, refunds.text
    body = refunds.body
    items = body["items"] if isinstance(body, dict) and "items" in body else body
    assert [refund["amount"] for refund in items] == [500]
    payer = await api.get(f"/api/v1/wallets/{alice.wallet_id}", token=alice.token)
    assert payer.body["balance"] == 3_500


async def test_history_filters_and_the_statement(
    open_page: OpenPage, make_user: MakeUser, api: Api, screenshot: Screenshot, tmp_path: Path
) -> None:
    alice = await make_user(balance=20_000, name="Alice Filter")
    bob = await make_user(name="Bob Filter")
    for amount, memo in ((100, "small"), (250, "middle"), (500, "large")):
        await _pay(api, alice, bob.email, amount, memo)
    page = await open_page()
    await log_in(page, alice.email, alice.password)
    await open_tab(page, "Activity")
    items = history(page)
    await expect(items).to_have_count(4)  # three payments and the funding deposit

    filters = page.get_by_role("region", name="History")
    await filters.get_by_label("Kind").select_option(label="Payments")
    await filters.get_by_label("Minimum amount").fill("2,00")
    await filters.get_by_role("button", name="Apply filters").click()
    await expect(items).to_have_count(2)
    await expect(items.first).to_contain_text("large")
    await expect(items.last).to_contain_text("middle")
    await expect(filters.get_by_role("status")).to_have_text("Showing 2 matching transactions.")
    await screenshot(page, "history")

    await filters.get_by_label("Status").select_option(label="Cancelled or refused")
    await filters.get_by_role("button", name="Apply filters").click()
    await expect(items).to_have_count(0)
    await expect(filters.get_by_text("No transactions match these filters.")).to_be_visible()

    await filters.get_by_role("button", name="Clear").click()
    await expect(items).to_have_count(4)
    async with page.expect_download() as waiting:
        await filters.get_by_role("button", name="Download statement (CSV)").click()
    download = await waiting.value
    saved = tmp_path / "statement.csv"
    await download.save_as(saved)
    lines = saved.read_text().splitlines()
    assert lines[0] == "date,id,kind,status,counterparty,amount,currency,memo,running_balance"
    assert sum(",-500,EUR,large," in line for line in lines) == 1


async def test_phone_tabs_keep_the_page_short(
    open_page: OpenPage, make_user: MakeUser, api: Api, screenshot: Screenshot
) -> None:
    alice = await make_user(balance=50_000, name="Alice Phone")
    bob = await make_user(name="Bob Phone")
    await _pay(api, alice, bob.email, 1_234, "Coffee ☕")
    page = await open_page(PHONE)
    await log_in(page, alice.email, alice.password)
    await expect(recent(page).first).to_contain_text("Coffee ☕")
    for name in ("Home", "Send", "Bank", "Activity"):
        await open_tab(page, name)
        width, height = await page.evaluate(
            "[document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
        )
        assert width <= PHONE["width"], (name, width)
        # One section at a time: no 2,100 px scroll to reach the form.
        assert height < 1_700, (name, height)
        tab = page.get_by_role("tab", name=name, exact=True)
        await expect(tab).to_be_in_viewport()
        await expect(page.get_by_role("tabpanel", name=name)).to_be_visible()
        await screenshot(page, f"phone-{name.lower()}")
    await open_tab(page, "Home")
    await screenshot(page, "phone")


async def test_main_views_have_no_serious_accessibility_violations(
    open_page: OpenPage, make_user: MakeUser, api: Api
) -> None:
    alice = await make_user(balance=10_000, name="Alice Access")
    bob = await make_user(name="Bob Access")
    await _pay(api, alice, bob.email, 300, "Flowers 💐")
    page = await open_page()
    found = {"login": await _accessibility_violations(page)}
    await page.get_by_role("button", name="Create an account").click()
    found["signup"] = await _accessibility_violations(page)
    await page.get_by_role("button", name="Log in").click()
    await log_in(page, alice.email, alice.password)
    await expect(recent(page)).to_have_count(2)
    for name in ("Home", "Send", "Bank", "Activity"):
        await open_tab(page, name)
        found[name] = await _accessibility_violations(page)
    confirmation = await review_payment(page, bob.email, "1.00")
    await expect(confirmation).to_be_visible()
    found["confirmation"] = await _accessibility_violations(page)
    phone = await open_page(PHONE)
    await log_in(phone, alice.email, alice.password)
    found["phone"] = await _accessibility_violations(phone)
    assert found == {view: [] for view in found}, found


async def test_states_are_said_in_words_never_codes(open_page: OpenPage) -> None:
    page = await open_page()
    said = await page.evaluate(
        """async () => {
            const { statusText } = await import("/static/render.js");
            const transfer = (fields) => ({ id: "trf_1", kind: "p2p", ...fields });
            return [
                statusText(transfer({ status: "pending" })),
                statusText(transfer({ status: "posted" })),
                statusText(transfer({ status: "voided", reason: "currency_mismatch" })),
                statusText(transfer({ status: "voided", reason: "expired" })),
                statusText(transfer({ status: "voided", reason: "some_new_reason" })),
                statusText(transfer({ status: "voided", reason: "declined after review" })),
                statusText(transfer({ id: "hld_1", status: "pending" })),
                statusText(transfer({
                    status: "pending",
                    review: {
                        status: "under_review", reasons: ["unusual_amount", "new_recipient"],
                    },
                })),
                getComputedStyle(document.documentElement).fontFamily,
            ];
        }"""
    )
    *states, fonts = said
    assert states == [
        "Pending",
        "Posted",
        "Voided: the bank account is in another currency",
        "Voided: the hold expired before it was released",
        "Voided: some new reason",
        "Voided: declined after review",
        "Held",
        "Under review: a larger amount than usual, a first payment to this person",
    ]
    # Emoji in memos draw from the system's colour emoji font (nothing is downloaded).
    assert "Noto Color Emoji" in fonts and "Apple Color Emoji" in fonts


async def test_a_payment_pushed_live_names_its_payer(
    open_page: OpenPage, make_user: MakeUser, api: Api
) -> None:
    alice = await make_user(balance=5_000, name="Alice Newcomer")
    bob = await make_user(name="Bob Listener")
    page = await open_page()
    await log_in(page, bob.email, bob.password)
    await expect(figure(page, "balance")).to_have_text("0.00 EUR")
    await _pay(api, alice, bob.email, 700, "Lunch")
    # The push carries wallet ids only; the page reads the transfer back for the names.
    item = recent(page).filter(has_text="Lunch")
    await expect(item).to_contain_text("Payment from Alice Newcomer")
    await expect(figure(page, "balance")).to_have_text("7.00 EUR")
