"""The console in a real Chromium (Debian's, driven by Playwright) against real API and worker
processes: a page fixture that fails the test on any browser console error, page error or
server error; axe-core (vendored from npm, ``vendor/axe.min.js``) for accessibility; and
screenshots at desktop and phone width under the test's output folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    Response,
    ViewportSize,
    sync_playwright,
)

from tests.helpers import Cluster

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
AXE = Path(__file__).with_name("vendor") / "axe.min.js"
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}
SLOW_MS = 30_000  # a render in a cold pool process


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        reason = f"Chromium not found at {CHROMIUM}; install it with: apt-get install chromium"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


class Problems:
    """What went wrong in the page: console errors, page errors, server errors."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.allowed_statuses: set[int] = set()

    def console(self, message: ConsoleMessage) -> None:
        # A refused request (a 422 a test provokes) is logged as a failed load: judged by
        # its response below instead.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.seen.append(f"console: {message.text}")

    def response(self, response: Response) -> None:
        status = response.status
        if (status >= 500 or status in (404, 405)) and status not in self.allowed_statuses:
            self.seen.append(f"{response.request.method} {response.url}: {status}")


@pytest.fixture
def problems() -> Problems:
    return Problems()


@pytest.fixture
def page(browser: Browser, cluster: Cluster, problems: Problems) -> Iterator[Page]:
    """A fresh desktop-sized page on the cluster's console; fails the test on any problem.
    Closed before the cluster stops, so open event streams end cleanly."""
    context = browser.new_context(viewport=DESKTOP, base_url=cluster.url)
    page = context.new_page()
    page.on("console", problems.console)
    page.on("pageerror", lambda error: problems.seen.append(f"pageerror: {error}"))
    page.on("response", problems.response)
    yield page
    context.close()
    assert problems.seen == [], problems.seen


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """Serious and critical accessibility violations axe-core finds on the page as it is."""
    page.add_script_tag(path=str(AXE))
    result: dict[str, Any] = page.evaluate(
        "async () => await axe.run(document, {resultTypes: ['violations']})"
    )
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def screenshots(page: Page, folder: Path, name: str) -> None:
    """The page at desktop and at phone width, full length, as PNGs in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        page.screenshot(path=str(folder / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size(DESKTOP)


def no_horizontal_scroll(page: Page) -> bool:
    """The layout holds: nothing wider than the viewport."""
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"))
