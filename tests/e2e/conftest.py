"""Fixtures for the e2e tests: a factory of real `taskgate serve` processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .harness import ServerFactory, server_factory


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[ServerFactory]:
    """`start_server(database=None, *, name=None, **settings)` -> a ready ServerProcess.

    Settings are Settings field names (`workers=2`, `sweep_interval_seconds=0.1`) passed as
    flags; the database defaults to one file per test. Every server is SIGKILLed (whole
    process group) at teardown, whatever the test did.
    """
    with server_factory(tmp_path) as start:
        yield start
