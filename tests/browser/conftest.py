"""Fixtures for the dashboard's browser tests: Debian's Chromium driven by Playwright.

The page is served by the session's wallet node (``wallet_app`` listens on a real TCP port on
127.0.0.1), so the browser, the API helpers and the live feed all talk to one node. Chromium is
the system's (``apt-get install chromium``): Playwright's own browser download is never used.
Without Chromium the browser tests skip on a laptop and fail in CI.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from servicekit import unavailable

from .helpers import DESKTOP, OpenPage, Screenshot

if TYPE_CHECKING:
    from playwright.async_api import Browser, Locator, Page, ViewportSize

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]
# Generous for a busy 2-core CI machine; a passing step takes milliseconds.
EXPECT_TIMEOUT_MS = 15_000
# Every run saves its screenshots under artifacts/ (ignored by git); the README's copies in
# docs/screenshots are refreshed only on request, so a test run never dirties the work tree.
_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = (
    _ROOT / "docs" / "screenshots"
    if os.environ.get("TRANSAKT_UPDATE_SCREENSHOTS")
    else _ROOT / "artifacts" / "screenshots"
)


def _unavailable(reason: str) -> NoReturn:
    unavailable(reason, "install it to run the browser tests")


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    """The system Chromium: skipped without it on a laptop, a failure in CI."""
    path = os.environ.get("TRANSAKT_TEST_CHROMIUM") or next(
        (found for name in CHROMIUM_CANDIDATES if (found := shutil.which(name))), None
    )
    if path is None:
        _unavailable("Chromium is not installed (apt-get install chromium)")
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        _unavailable("Playwright for Python is not installed (pip install -e '.[dev]')")
    assert path is not None
    return path


@pytest.fixture(scope="session")
async def browser(chromium_executable: str) -> AsyncIterator[Browser]:
    """One headless Chromium for the session; each test opens its own contexts."""
    from playwright.async_api import async_playwright, expect

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=chromium_executable, args=CHROMIUM_ARGS
        )
        yield chromium
        await chromium.close()


@pytest.fixture(scope="session")
def site_url(wallet_app: TestClient[web.Request, web.Application]) -> str:
    """Where the session's wallet node serves the dashboard."""
    return str(wallet_app.make_url("/"))


@pytest.fixture
async def open_page(browser: Browser, site_url: str) -> AsyncIterator[OpenPage]:
    """Open the dashboard in a fresh browser context (its own storage: one user each).

    Every page is watched: an uncaught script error, a Content-Security-Policy violation, a
    dialog (what an injected ``alert`` would open) or a token in a request's URL (other than
    the websocket's) fails the test.
    """
    contexts = []
    problems: list[str] = []

    async def open_one(
        viewport: ViewportSize = DESKTOP, *, path: str | None = "/", locale: str = "en-GB"
    ) -> Page:
        context = await browser.new_context(
            base_url=site_url,
            viewport=viewport,
            locale=locale,
            timezone_id="UTC",
            reduced_motion="reduce",
            service_workers="block",
        )
        contexts.append(context)
        page = await context.new_page()

        def on_console(message: Any) -> None:
            if "Content Security Policy" in message.text:
                problems.append(f"CSP violation: {message.text}")

        async def on_dialog(dialog: Any) -> None:
            problems.append(f"unexpected dialog: {dialog.type} {dialog.message!r}")
            await dialog.dismiss()

        def on_request(request: Any) -> None:
            # A JWT starts "eyJ"; only the websocket may carry one in its URL (?token=).
            if ("eyJ" in request.url or "token=" in request.url) and "/api/v1/live?" not in (
                request.url
            ):
                problems.append(f"a token in a URL: {request.method} {request.url}")

        page.on("console", on_console)
        page.on("request", on_request)
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        page.on("dialog", on_dialog)
        if path is not None:  # None: the test sets the page up (a fake clock) and goes itself
            await page.goto(path)
        return page

    yield open_one
    for context in contexts:
        await context.close()
    assert not problems, problems


@pytest.fixture(scope="session")
def screenshot() -> Screenshot:
    """Save a PNG of the page to artifacts/screenshots/<name>.png (docs/ on request).

    The view is the top of the page, or starts at ``show`` when given.
    """

    async def save(page: Page, name: str, show: Locator | None = None) -> None:
        if show is None:
            await page.evaluate("window.scrollTo(0, 0)")
        else:
            await show.evaluate("node => node.scrollIntoView({block: 'start'})")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        # Typing carets and focus rings differ run to run; hide the caret so reruns match.
        await page.screenshot(path=SCREENSHOTS / f"{name}.png", caret="hide", animations="disabled")

    return save
