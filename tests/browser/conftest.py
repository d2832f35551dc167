"""Browser tier: the built console (console/dist) in Debian's Chromium, driven by Playwright for Python,
against the real local stack (``python -m devstack`` on a free port, started once per session).

Chromium comes from apt (``make install`` installs it when missing); Playwright's own browser download is
never used. ``CONSOLE_SCREENSHOTS=<dir>`` saves each role's screen there (docs/console.md uses them).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize, expect, sync_playwright

from tests.e2e.conftest import REPO_ROOT, Stack, stack  # noqa: F401 - the session's local stack fixture
from tests.e2e.tenant import Tenant

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-gpu",
    "--disable-dev-shm-usage",
]
DIST = REPO_ROOT / "console" / "dist"
AXE = REPO_ROOT / "console" / "node_modules" / "axe-core" / "axe.min.js"
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
LIVE = re.compile(r"\blive\b")
TIMEOUT_MS = 10_000


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make install` (installs Debian's chromium as root)", pytrace=False)
    if not (DIST / "index.html").exists():
        pytest.fail("console/dist is missing: run `make console`", pytrace=False)
    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def tenant(stack: Stack) -> Iterator[Tenant]:  # noqa: F811 - the fixture imported above
    fresh = Tenant(stack)
    try:
        yield fresh
    finally:
        fresh.close()


OpenAs = Callable[..., Page]


@pytest.fixture
def open_as(browser: Browser, stack: Stack) -> Iterator[OpenAs]:  # noqa: F811
    """``open_as(token)``: a new browser context signed in with ``/?token=``, waiting until it is live."""
    contexts: list[BrowserContext] = []

    def open_page(token: str, *, viewport: ViewportSize | None = None, wait_live: bool = True) -> Page:
        context = browser.new_context(viewport=viewport or DESKTOP)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        page.goto(f"{stack.base_url}/?token={token}")
        if wait_live:
            expect(page.get_by_test_id("connection-status")).to_have_text(LIVE)
        return page

    yield open_page
    for context in contexts:
        context.close()


def screenshot(page: Page, name: str) -> None:
    target = os.environ.get("CONSOLE_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(target) / f"{name}.png"))


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core (from the console's npm dependencies) run in the page: serious and critical violations.
    Evaluated through the browser's debugging protocol: the console's policy refuses an added inline script."""
    page.evaluate(f"() => {{ {AXE.read_text(encoding='utf-8')}\n; window.axe = axe; }}")
    result: dict[str, Any] = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def kinds_and_seqs(page: Page, scope: str = "body") -> list[tuple[int, str]]:
    """(seq, kind) of every timeline entry inside ``scope`` (a Playwright selector), in page order."""
    entries = page.locator(scope).locator("[data-testid=timeline-entry]")
    pairs: list[list[Any]] = entries.evaluate_all("els => els.map(e => [Number(e.dataset.seq), e.dataset.kind])")
    return [(int(seq), str(kind)) for seq, kind in pairs]
