"""Headless Chromium for the browser tests: Debian's /usr/bin/chromium driven by Playwright.

No browser is downloaded (the network is closed): the executable is given explicitly
(`CLIPPER_TEST_CHROMIUM` overrides it), and a missing one fails the test with a message
saying how to install it, never a skip. Each browser gets a fresh profile directory and the
flags that keep it off the network. A test that fails leaves a screenshot of every open page
in `test-output/screenshots/` (see `browser_for_test`).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_PATH = os.environ.get("CLIPPER_TEST_CHROMIUM", "/usr/bin/chromium")
SCREENSHOT_DIR = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
]  # fmt: skip
TIMEOUT_MS = 15_000


def chromium_executable() -> str:
    """The browser's path; fails the test (not a skip) when it is not installed."""
    path = shutil.which(CHROMIUM_PATH) or (
        CHROMIUM_PATH if os.access(CHROMIUM_PATH, os.X_OK) else None
    )
    if path is None:
        pytest.fail(
            f"Chromium not found at {CHROMIUM_PATH}: install it with "
            "`sudo apt-get install -y chromium chromium-driver` (scripts/install-system does), "
            "or point CLIPPER_TEST_CHROMIUM at a Chromium executable",
            pytrace=False,
        )
    return path


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium with a fresh profile (a Playwright `BrowserContext`: open pages
    with `new_page(browser)`), closed afterwards."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright is missing: pip install -e '.[test]'", pytrace=False)
    executable = chromium_executable()
    profile = tempfile.mkdtemp(prefix="clipper-chromium-")
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch_persistent_context(
                profile,  # passed to Chromium as --user-data-dir
                executable_path=executable,
                args=CHROMIUM_ARGS,
                headless=True,
                viewport={"width": 1400, "height": 1000},
                timeout=60_000,
            )
            try:
                yield browser
            finally:
                browser.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def new_page(browser: Any) -> Any:
    """A page whose console errors and failed requests are kept in `page.problems`."""
    blank = [page for page in browser.pages if page.url == "about:blank"]
    page = blank[0] if blank else browser.new_page()  # the window Chromium opened
    page.set_default_timeout(TIMEOUT_MS)
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.problems = problems
    return page


@contextlib.contextmanager
def browser_for_test(request: pytest.FixtureRequest) -> Iterator[Any]:
    """`chromium()` for one test; when the test fails, a screenshot of each open page is
    saved into test-output/screenshots/ (its path and the page's console errors printed)."""
    failed_before = request.session.testsfailed
    with chromium() as browser:
        yield browser
        # A fixture's teardown runs after the test's outcome is counted.
        if request.session.testsfailed > failed_before:
            save_screenshots(browser, request.node.nodeid)


def save_screenshots(browser: Any, test_id: str) -> None:
    """A full-page screenshot of every open page of `browser`."""
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", test_id)
    for index, page in enumerate(browser.pages):
        path = SCREENSHOT_DIR / f"{name}-{index}.png"
        with contextlib.suppress(Exception):
            page.screenshot(path=str(path), full_page=True)
            print(f"screenshot of {page.url}: {path}")
            print("browser console errors:", getattr(page, "problems", []))


def draw_a_one_and_ask(page: Any) -> None:
    """On the digits web app: draw a "1" (one vertical stroke) and press Predict; returns
    once an answer or an error is shown."""
    box = page.locator("#pad").bounding_box()
    page.mouse.move(box["x"] + 128, box["y"] + 40)
    page.mouse.down()
    for step in range(1, 11):
        page.mouse.move(box["x"] + 128, box["y"] + 40 + 17 * step)
    page.mouse.up()
    page.click("#predict")
    page.wait_for_function(
        "document.querySelector('#prediction').textContent !== '?'"
        " || document.querySelector('#error').textContent !== ''"
    )
