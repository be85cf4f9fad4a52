"""The store contract suite's backends: each test runs once per backend.

`store` is a store on a fresh database: a SQLite file, or a PostgreSQL database of the
session's throwaway server, as the session-wide `backend` fixture says. `store_twin` is
a second store on the same database, as another server process (or host) would open it.
A test that is about one backend only says so with
`@pytest.mark.parametrize("backend", [...], indirect=True)`.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest

from app.core.models import QueueConfig, RetryPolicy
from app.store.base import Store
from app.store.postgres import PostgresOptions, PostgresStore
from app.store.sqlite import SqliteOptions, SqliteStore

DEFAULTS = QueueConfig(
    max_attempts=3,
    retry=RetryPolicy(initial_delay_seconds=1, factor=2, max_delay_seconds=60, jitter=False),
    lease_seconds=30,
    retention_seconds=3600,
)
IDEMPOTENCY_WINDOW_MS = 60_000


def make_store(request: pytest.FixtureRequest, backend: str, seed: int) -> Store:
    """A store of `backend` on this test's database (not opened)."""
    rng = random.Random(seed)
    if backend == "postgres":
        url = request.getfixturevalue("postgres_url")
        return PostgresStore(
            PostgresOptions(url=url, pool_size=4), DEFAULTS, IDEMPOTENCY_WINDOW_MS, rng
        )
    path = request.getfixturevalue("db_path")
    return SqliteStore(SqliteOptions(path=path), DEFAULTS, IDEMPOTENCY_WINDOW_MS, rng)


@pytest.fixture
async def store(request: pytest.FixtureRequest, backend: str) -> AsyncIterator[Store]:
    opened = make_store(request, backend, seed=7)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def store_twin(request: pytest.FixtureRequest, store: Store) -> AsyncIterator[Store]:
    """A second store on the same database, as another server process would open it (of
    the store's kind: a module may override `store` with one backend's)."""
    twin = make_store(request, "postgres" if isinstance(store, PostgresStore) else "sqlite", 8)
    await twin.open()
    try:
        yield twin
    finally:
        await twin.close()
