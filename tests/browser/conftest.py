"""One real `taskgate serve` and one headless chromium per test module; a fresh browser
context (so a fresh sessionStorage) per test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.e2e.harness import ServerProcess, server_factory

from .support import DESKTOP, PageProblems, chromium

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with server_factory(tmp_path_factory.mktemp("dashboard")) as start:
        yield start()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A page in its own context; fails the test on console errors or CSP violations."""
    context = browser.new_context(viewport=DESKTOP)  # type: ignore[arg-type]
    opened = context.new_page()
    problems = PageProblems(opened)
    try:
        yield opened
    finally:
        context.close()
    assert problems.messages == [], problems.messages
