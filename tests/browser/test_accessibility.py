"""An automated accessibility audit (axe-core, from the axe-playwright-python package) of
every dashboard page in real chromium, at 1280 px and at phone width, and no sideways
scrolling of the page itself on a phone (wide tables scroll in their own box)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import IN_CI
from tests.e2e.harness import ServerProcess, server_factory

from .screenshots import populate
from .support import DESKTOP, PHONE, sign_in

if not IN_CI:
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    pytest.importorskip("axe_playwright_python", reason="axe-playwright-python is not installed")
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect

# WCAG 2.1 A and AA, the rules axe can decide on its own.
AXE_OPTIONS = {
    "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
    "resultTypes": ["violations"],
}
# Each page, and what shows that its data arrived.
PAGES = {
    "overview": ("/dashboard", "tr[data-queue='flaky']"),
    "queue": ("/dashboard/queues/emails", "#tasks tbody tr"),
    "task": ("/dashboard/tasks/{task}", "#timeline li"),
    "dead": ("/dashboard/queues/flaky/dead", "#dead tbody tr"),
    "workers": ("/dashboard/workers", "tr[data-worker='worker-2']"),
    "schedules": ("/dashboard/schedules", "tr[data-schedule='nightly-report']"),
}


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    """A server with a little of everything (schedules too); the id of a task to open."""
    with server_factory(tmp_path_factory.mktemp("a11y")) as start:
        server = start()
        with server.client() as http:
            ids = populate(http)
        yield server, ids["task"]


def violations(page: Page) -> list[str]:
    """Every axe violation on the page, one line per rule and element."""
    results: dict[str, Any] = Axe().run(page, options=AXE_OPTIONS).response
    return [
        f"{rule['id']} ({rule['impact']}): {', '.join(map(str, node['target']))}: {rule['help']}"
        for rule in results["violations"]
        for node in rule["nodes"]
    ]


def open_page(page: Page, server: ServerProcess, name: str, task_id: str) -> None:
    path, loaded = PAGES[name]
    page.goto(server.base_url + path.format(task=task_id))
    page.locator(loaded).first.wait_for()
    expect(page.locator("#live-state")).to_have_text("live")


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_every_page_passes_the_axe_audit(
    browser: Browser, audited: tuple[ServerProcess, str], viewport: dict[str, int]
) -> None:
    server, task_id = audited
    context = browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    page = context.new_page()
    try:
        page.goto(server.base_url + "/dashboard")
        page.get_by_label("API token").wait_for()
        found = {"sign-in": violations(page)}
        sign_in(page, server.base_url, server.token)
        for name in PAGES:
            open_page(page, server, name, task_id)
            found[name] = violations(page)
    finally:
        context.close()
    assert found == {name: [] for name in found}


def test_no_page_scrolls_sideways_on_a_phone(
    browser: Browser, audited: tuple[ServerProcess, str]
) -> None:
    server, task_id = audited
    context = browser.new_context(viewport=PHONE)  # type: ignore[arg-type]
    page = context.new_page()
    overflowing = {}
    try:
        sign_in(page, server.base_url, server.token)
        for name in PAGES:
            open_page(page, server, name, task_id)
            width = page.evaluate("document.documentElement.scrollWidth")
            if width > PHONE["width"]:
                overflowing[name] = width
    finally:
        context.close()
    assert overflowing == {}


def test_the_audit_finds_a_violation_when_there_is_one(
    browser: Browser, audited: tuple[ServerProcess, str], tmp_path: Path
) -> None:
    server, _ = audited
    context = browser.new_context(viewport=DESKTOP)  # type: ignore[arg-type]
    page = context.new_page()
    try:
        sign_in(page, server.base_url, server.token)
        page.evaluate("document.querySelector('#sign-out').textContent = ''")
        found = violations(page)
    finally:
        context.close()
    assert any(line.startswith("button-name") for line in found), found
