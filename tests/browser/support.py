"""Headless Chromium (the Debian `chromium` package) driven by Playwright, and the steps
the dashboard tests share. Without chromium or Playwright the tests skip, except in CI
(CI=true), where they fail."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import httpx
import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
# Long enough for a refresh after an event (~0.3 s), and below the pages' 10 s poll: only
# the event stream can bring a change in time.
LIVE_TIMEOUT_MS = 5_000
REFUSAL = re.compile(r"Failed to load resource: .* status of (40[1349]|422) ")


def _missing(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def chromium_path() -> str:
    """The chromium executable; skips the test when there is none (fails it in CI)."""
    found = shutil.which("chromium")
    if found is None:
        _missing("chromium is not installed (Debian: apt-get install chromium)")
    assert found is not None
    return found


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless chromium for the whole module; Playwright's own browsers are never used."""
    executable = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (pip install -e '.[dev]')")
        raise
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


class PageProblems:
    """Console errors, CSP violations and uncaught exceptions seen by a page."""

    def __init__(self, page: Page) -> None:
        self.messages: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.messages.append(f"uncaught: {error}"))

    def _console(self, message: Any) -> None:
        # Refusals (401, 403, 404, 409, 422) are answers the dashboard shows; the tests
        # check its words.
        if message.type == "error" and not REFUSAL.match(message.text):
            self.messages.append(message.text)


def sign_in(page: Page, base_url: str, token: str, path: str = "/dashboard") -> None:
    """Open `path`, paste the token into the sign-in form and wait for the page to show."""
    from playwright.sync_api import expect

    page.goto(base_url + path)
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.locator("#main").wait_for(state="visible")
    # The event stream is open: changes from now on reach the page without a reload.
    expect(page.locator("#live-state")).to_have_text("live", timeout=LIVE_TIMEOUT_MS)


def submit(http: httpx.Client, queue: str, **task: Any) -> dict[str, Any]:
    """Submit a task through the API; the created task."""
    response = http.post(f"/v1/queues/{queue}/tasks", json={"type": "job", **task})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def make_dead(http: httpx.Client, queue: str, message: str, **task: Any) -> dict[str, Any]:
    """A task on `queue` claimed and failed without retry: it is dead. Returns the task."""
    created = submit(http, queue, **task)
    claimed = http.post(f"/v1/queues/{queue}/claim", json={"worker_id": f"{queue}-worker"})
    (leased,) = claimed.json()["tasks"]
    assert leased["id"] == created["id"]
    failed = http.post(
        f"/v1/tasks/{created['id']}/fail",
        json={
            "lease_token": leased["lease"]["token"],
            "retry": False,
            "error": {"type": "SmtpError", "message": message},
        },
    )
    assert failed.status_code == 200, failed.text
    assert failed.json()["state"] == "dead"
    return created
