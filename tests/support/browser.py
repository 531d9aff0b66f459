"""A real browser for the dashboard tests: Debian's chromium driven by Playwright.

No browser download: Playwright launches the system's ``/usr/bin/chromium`` (installed by
``.ci/run`` when missing). Every request the page makes goes through a route that lets
loopback through and aborts (and records) anything else, so a test can prove that the
dashboard works offline and never reaches another host.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, sync_playwright

from tests.support.database import IN_CI

CHROMIUM = os.environ.get("FOLLOWTHROUGH_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Guard:
    """Requests the page tried to send off this machine (aborted)."""

    refused: list[str] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)

    def handle(self, route: Route) -> None:
        url = route.request.url
        self.seen.append(url)
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob", "about") or parts.hostname in LOOPBACK:
            route.continue_()
        else:
            self.refused.append(url)
            route.abort("blockedbyclient")


@contextmanager
def chromium() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        if IN_CI:
            pytest.fail(f"chromium is not installed at {CHROMIUM} (CI is set; .ci/run installs it)")
        pytest.skip(f"chromium not installed at {CHROMIUM} (apt-get install chromium); CI fails instead")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def guarded_page(browser: Browser, *, width: int = 1280, height: int = 900) -> Iterator[tuple[Page, Guard]]:
    guard = Guard()
    context: BrowserContext = browser.new_context(viewport={"width": width, "height": height},
                                                  service_workers="block")
    context.route("**/*", guard.handle)
    page = context.new_page()
    try:
        yield page, guard
    finally:
        context.close()


def screenshot(page: Page, folder: Path, name: str) -> Path:
    """A full-page PNG under the test's folder; also into docs/screenshots/ when
    FOLLOWTHROUGH_UPDATE_SCREENSHOTS is set (`make screenshots`), for the README and docs/dashboard.md."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if os.environ.get("FOLLOWTHROUGH_UPDATE_SCREENSHOTS"):
        target = REPO / "docs" / "screenshots"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target / path.name)
    return path


def sign_in(page: Page, base_url: str, token: str, path: str) -> None:
    """Open ``path`` of the dashboard, signed out: sign in with ``token`` on the page it sends
    to, and land back on ``path``."""
    page.goto(f"{base_url}{path}")
    assert "/dashboard/signin" in page.url
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base_url}{path}")
