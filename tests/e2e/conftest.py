"""Fixtures for the e2e tests: factories of real `taskgate serve` processes, on a SQLite
file (`start_server`) or on each backend in turn (`start_server_on_backend`)."""

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


@pytest.fixture
def start_server_on_backend(tmp_path: Path, backend_env: dict[str, str]) -> Iterator[ServerFactory]:
    """`start_server` on each backend (the test runs as [sqlite] and [postgres]): on
    PostgreSQL every server of the test shares a fresh database given as
    TASKGATE_DATABASE_URL, and the `database` file only locates the token secret."""
    with server_factory(tmp_path, env=backend_env) as start:
        yield start
