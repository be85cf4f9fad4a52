"""Fixtures: one real server for the whole package, a fresh queue name per test, a client."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from runners import Client
from tests.e2e.harness import ServerProcess, server_factory

from .scripted import FAST_RETRIES


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One `taskgate serve` process shared by the package (each test uses its own queue)."""
    with server_factory(tmp_path_factory.mktemp("runners")) as start:
        yield start(long_poll_max_seconds=2.0, sweep_interval_seconds=0.05)


@pytest.fixture
def queue() -> str:
    """A queue name no other test uses."""
    return f"runners-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def client(server: ServerProcess) -> Iterator[Client]:
    with Client(server.base_url, retries=FAST_RETRIES) as sync_client:
        yield sync_client
