"""What the browser tests do on the page, the way a person would: by label and role."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.async_api import Locator, Page, ViewportSize

DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}

OpenPage = Callable[..., Awaitable["Page"]]
Screenshot = Callable[..., Awaitable[None]]

# What a hostile memo or name looks like: it must show as these characters, never as markup.
HOSTILE_TEXT = "<img src=x onerror=alert(1)>"


def expect(target: Any) -> Any:
    """Playwright's auto-waiting assertions (imported late: Playwright may be missing)."""
    from playwright.async_api import expect as playwright_expect

    return playwright_expect(target)


async def log_in(page: Page, email: str, password: str) -> None:
    """Fill the login form and wait for the dashboard."""
    form = page.get_by_role("region", name="Log in")
    await form.get_by_label("E-mail").fill(email)
    await form.get_by_label("Password").fill(password)
    await form.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("heading", name="Wallets", exact=True)).to_be_visible()


async def open_tab(page: Page, name: str) -> None:
    """Open one of the dashboard's tabs (Home, Send, Bank, Activity), as a click would."""
    tab = page.get_by_role("tab", name=name, exact=True)
    await tab.click()
    await expect(tab).to_have_attribute("aria-selected", "true")


# The figures and lists below are read whichever tab is open (their text is kept current in
# the hidden tabs too); anything a test types into or clicks needs its tab opened first.


def wallet_card(page: Page, currency: str = "EUR") -> Locator:
    """The card of the user's wallet in ``currency`` (on the Home tab)."""
    return page.get_by_role("region", name=f"{currency} wallet", include_hidden=True)


def figure(page: Page, name: str, currency: str = "EUR") -> Locator:
    """One figure of a wallet card: balance, available, pending-in or pending-out."""
    return wallet_card(page, currency).get_by_test_id(name)


def history(page: Page) -> Locator:
    """The items of the history list (on the Activity tab)."""
    return page.get_by_role("list", name="History", include_hidden=True).get_by_role(
        "listitem", include_hidden=True
    )


def recent(page: Page) -> Locator:
    """The items of the recent activity list (on the Home tab)."""
    return page.get_by_role("list", name="Recent activity", include_hidden=True).get_by_role(
        "listitem", include_hidden=True
    )


def operations(page: Page) -> Locator:
    """The items of the bank operations list, newest first (on the Bank tab)."""
    return page.get_by_role("list", name="Bank operations", include_hidden=True).get_by_role(
        "listitem", include_hidden=True
    )


async def review_payment(page: Page, to: str, amount: str, memo: str = "") -> Locator:
    """Fill the payment form, ask for the review and return the confirmation panel."""
    await open_tab(page, "Send")
    form = page.get_by_role("region", name="Send money")
    await form.get_by_label("To (e-mail or wallet id)").fill(to)
    await form.get_by_label("Amount").fill(amount)
    await form.get_by_label("Memo (optional)").fill(memo)
    await form.get_by_role("button", name="Review payment").click()
    confirmation = page.get_by_role("group", name="Confirm payment")
    await expect(confirmation).to_be_visible()
    return confirmation
