"""Shared fixtures: migrated SQLite files and PostgreSQL databases, the `backend` every
backend-independent test runs on (once per backend), settings, and the app in process over
httpx."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from app.core.clock import Clock
from app.main import create_app
from app.settings import Settings, load_settings
from app.store.migrate import migrate_sqlite
from tests.postgres_server import (  # noqa: F401 - shared fixtures
    PostgresServer,
    postgres_server,
    postgres_url,
)
from tests.redis_server import redis_server  # noqa: F401 - a shared fixture

IN_CI = os.environ.get("CI") == "true"
BACKENDS = ["sqlite", "postgres"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="also run soak/benchmark tests")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: pass --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A freshly migrated SQLite file."""
    path = tmp_path / "taskgate.db"
    migrate_sqlite(path)
    return path


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The store under test, "sqlite" or "postgres": a test that uses it (directly or through
    `make_settings`, `backend_env`…) runs once per backend. A test about the SQLite file
    itself says so: `@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)`.
    Session-scoped so that a package's long-lived server can take it too."""
    name: str = request.param
    return name


@contextlib.contextmanager
def backend_database(backend: str, request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """The TASKGATE_* variables that put a server on `backend`, for the `with` block: none
    for SQLite (its file is the `database` setting); for PostgreSQL TASKGATE_DATABASE_URL
    of a fresh, migrated database, dropped at exit."""
    if backend == "sqlite":
        yield {}
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    with server.database() as url:
        yield {"TASKGATE_DATABASE_URL": url}


@pytest.fixture
def backend_env(backend: str, request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """`backend_database` for one test: the environment of its app or server processes."""
    with backend_database(backend, request) as env:
        yield env


SettingsFactory = Callable[..., Settings]


@pytest.fixture
def make_settings(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str, backend_env: dict[str, str]
) -> SettingsFactory:
    """Settings for tests on `backend`: a migrated SQLite file, or a PostgreSQL database
    (its secret file still goes next to `database`); short long-polls, fast sweeps."""
    database = (
        request.getfixturevalue("db_path") if backend == "sqlite" else tmp_path / "taskgate.db"
    )

    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database": str(database),
            "long_poll_max_seconds": 2.0,
            "sweep_interval_seconds": 0.05,
            "wake_poll_seconds": 0.02,
        }
        values.update(overrides)
        return load_settings(environ=backend_env, overrides=values)

    return build


def admin_token(settings: Settings, scopes: tuple[str, ...] = ("admin",), **claims: Any) -> str:
    """A token for the server these settings describe (its secret file is created if needed)."""
    from app.auth.setup import ensure_secret, secret_path, token_rules
    from app.auth.signing_keys import load_signing_keys
    from app.auth.tokens import mint_token

    ensure_secret(settings)
    key = load_signing_keys(secret_path(settings))[0]
    return mint_token(
        key,
        token_rules(settings),
        claims.get("subject", "tests"),
        list(scopes),
        claims.get("ttl_seconds", 3600),
        claims.get("queues"),
    )


@contextlib.asynccontextmanager
async def running_app(app: Starlette, token: str | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """The app's lifespan around an httpx client that calls it in process (as `token`)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://taskgate.test", headers=headers
        ) as client:
            yield client


AppFactory = Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def start_app(make_settings: SettingsFactory) -> AppFactory:
    """`async with start_app(clock=..., **settings) as client:` runs a fresh app."""

    def start(clock: Clock | None = None, **overrides: Any) -> Any:
        settings = make_settings(**overrides)
        token = admin_token(settings) if settings.auth else None
        return running_app(create_app(settings, clock=clock), token)

    return start


@pytest.fixture
async def client(start_app: AppFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with start_app() as http:
        yield http


@pytest.fixture
def fresh_env() -> Iterator[dict[str, str]]:
    """The environment without TASKGATE_* variables (for subprocesses)."""
    yield {k: v for k, v in os.environ.items() if not k.startswith("TASKGATE_")}
