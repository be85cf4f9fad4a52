"""The settings pick the store (the `backend` fixture's: SQLite file or PostgreSQL URL), and
`taskgate migrate --database-url` migrates a PostgreSQL database."""

from __future__ import annotations

import pytest

from app.cli.main import main
from app.main import create_app
from app.store.postgres import PostgresStore
from app.store.sqlite import SqliteStore
from tests.conftest import SettingsFactory, running_app
from tests.postgres_server import PostgresServer

pytestmark = pytest.mark.anyio


async def test_the_app_keeps_its_tasks_in_the_store_its_settings_name(
    make_settings: SettingsFactory, backend: str
) -> None:
    app = create_app(make_settings(auth=False))
    assert isinstance(app.state.store, PostgresStore if backend == "postgres" else SqliteStore)
    async with running_app(app) as client:
        assert (await client.get("/readyz")).status_code == 200
        submitted = await client.post("/v1/queues/q/tasks", json={"type": "t", "payload": [1]})
        assert submitted.status_code == 201
    # A second app on the same settings reads the task back: it was stored, not held.
    async with running_app(create_app(make_settings(auth=False))) as client:
        fetched = await client.get(f"/v1/tasks/{submitted.json()['id']}")
        assert fetched.status_code == 200 and fetched.json()["payload"] == [1]


def test_migrate_takes_the_database_url(
    postgres_server: PostgresServer, capsys: pytest.CaptureFixture[str]
) -> None:
    postgres_server.admin("CREATE DATABASE cli_migrate")
    try:
        url = postgres_server.url("cli_migrate")
        assert main(["migrate", "--database-url", url]) == 0
        assert "applied 0001_initial, 0002_push_delivery" in capsys.readouterr().out
        assert main(["migrate", "--database-url", url]) == 0
        assert "nothing (already up to date)" in capsys.readouterr().out
    finally:
        postgres_server.drop_database("cli_migrate")
