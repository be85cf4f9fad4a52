"""The app and the CLI with TASKGATE_DATABASE_URL set: the PostgreSQL store is the one used."""

from __future__ import annotations

import asyncio

import pytest

from app.cli.main import main
from app.main import create_app
from app.store.postgres import PostgresStore
from tests.conftest import SettingsFactory, running_app
from tests.postgres_server import PostgresServer

pytestmark = pytest.mark.anyio


async def test_a_task_goes_round_over_http_on_postgres(
    make_settings: SettingsFactory, postgres_url: str
) -> None:
    app = create_app(make_settings(database_url=postgres_url, auth=False))
    assert isinstance(app.state.store, PostgresStore)
    async with running_app(app) as client:
        assert (await client.get("/readyz")).status_code == 200
        waiting = asyncio.create_task(
            client.post("/v1/queues/q/claim", json={"worker_id": "w", "wait_seconds": 2})
        )
        await asyncio.sleep(0)  # the claim waits first; the submit wakes it
        submitted = await client.post("/v1/queues/q/tasks", json={"type": "t", "payload": [1]})
        assert submitted.status_code == 201
        (claimed,) = (await waiting).json()["tasks"]
        assert claimed["id"] == submitted.json()["id"]
        done = await client.post(
            f"/v1/tasks/{claimed['id']}/complete",
            json={"lease_token": claimed["lease"]["token"], "result": {"ok": True}},
        )
        assert done.status_code == 200 and done.json()["state"] == "succeeded"
        fetched = (await client.get(f"/v1/tasks/{claimed['id']}")).json()
        assert fetched["payload"] == [1] and fetched["result"] == {"ok": True}


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
