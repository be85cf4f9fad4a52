"""The store contract suite's backends: each test runs once per backend."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.core.models import QueueConfig, RetryPolicy
from app.store.base import Store
from app.store.sqlite import SqliteOptions, SqliteStore

DEFAULTS = QueueConfig(
    max_attempts=3,
    retry=RetryPolicy(initial_delay_seconds=1, factor=2, max_delay_seconds=60, jitter=False),
    lease_seconds=30,
    retention_seconds=3600,
)
IDEMPOTENCY_WINDOW_MS = 60_000


@pytest.fixture(params=["sqlite"])
async def store(request: pytest.FixtureRequest, db_path: Path) -> AsyncIterator[Store]:
    backend: Store = SqliteStore(
        SqliteOptions(path=db_path), DEFAULTS, IDEMPOTENCY_WINDOW_MS, random.Random(7)
    )
    await backend.open()
    try:
        yield backend
    finally:
        await backend.close()


@pytest.fixture
async def store_twin(store: Store, db_path: Path) -> AsyncIterator[Store]:
    """A second store on the same database, as another server process would open it."""
    assert isinstance(store, SqliteStore)
    twin = SqliteStore(
        SqliteOptions(path=db_path), DEFAULTS, IDEMPOTENCY_WINDOW_MS, random.Random(8)
    )
    await twin.open()
    try:
        yield twin
    finally:
        await twin.close()
