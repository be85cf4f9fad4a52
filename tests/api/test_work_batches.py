"""Batch complete and fail: per-item outcomes, one commit, fencing and visibility per item."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from app.main import create_app
from tests.conftest import SettingsFactory, admin_token, running_app

pytestmark = pytest.mark.anyio


async def claimed(client: httpx.AsyncClient, count: int, queue: str = "q") -> list[dict[str, Any]]:
    batch = {"tasks": [{"type": "t", "payload": n} for n in range(count)]}
    assert (await client.post(f"/v1/queues/{queue}/tasks/batch", json=batch)).status_code == 200
    response = await client.post(
        f"/v1/queues/{queue}/claim", json={"worker_id": "w", "max_tasks": count}
    )
    tasks: list[dict[str, Any]] = response.json()["tasks"]
    assert len(tasks) == count
    return tasks


async def test_batch_complete_records_each_item_on_its_own(client: httpx.AsyncClient) -> None:
    first, second, third = await claimed(client, 3)
    items = [
        {"task_id": first["id"], "lease_token": first["lease"]["token"], "result": {"n": 1}},
        {"task_id": second["id"], "lease_token": "lt_stale"},
        {"task_id": "t_unknown", "lease_token": "lt_x"},
        {"task_id": third["id"], "lease_token": third["lease"]["token"]},
    ]
    response = await client.post("/v1/tasks/complete", json={"items": items})
    assert response.status_code == 200, response.text
    body = response.json()
    assert [r["status"] for r in body["results"]] == [200, 409, 404, 200]
    assert (body["accepted"], body["rejected"]) == (2, 2)
    assert body["results"][0]["state"] == "succeeded"
    assert body["results"][1]["error"]["type"] == "urn:taskgate:problem:lease-lost"
    done = (await client.get(f"/v1/tasks/{first['id']}")).json()
    assert (done["state"], done["result"]) == ("succeeded", {"n": 1})
    assert (await client.get(f"/v1/tasks/{third['id']}")).json()["result"] is None
    assert (await client.get(f"/v1/tasks/{second['id']}")).json()["state"] == "running"
    again = await client.post("/v1/tasks/complete", json={"items": items[:1]})
    assert again.json()["results"][0]["status"] == 409


async def test_batch_fail_retries_or_buries_each_item(client: httpx.AsyncClient) -> None:
    first, second = await claimed(client, 2)
    items = [
        {
            "task_id": first["id"],
            "lease_token": first["lease"]["token"],
            "error": {"type": "Boom", "message": "again later"},
            "retry_after_seconds": 60,
        },
        {"task_id": second["id"], "lease_token": second["lease"]["token"], "retry": False},
    ]
    body = (await client.post("/v1/tasks/fail", json={"items": items})).json()
    assert [(r["status"], r["state"]) for r in body["results"]] == [
        (200, "queued"),
        (200, "dead"),
    ]
    retried = (await client.get(f"/v1/tasks/{first['id']}")).json()
    assert retried["last_error"]["type"] == "Boom"


async def test_bad_batches_change_nothing(client: httpx.AsyncClient) -> None:
    (task,) = await claimed(client, 1)
    item = {"task_id": task["id"], "lease_token": task["lease"]["token"]}
    for body in ({"items": []}, {"items": [item] * 101}, {"items": [{**item, "extra": 1}]}, {}):
        response = await client.post("/v1/tasks/complete", json=body)
        assert response.status_code == 422, body
    assert (await client.get(f"/v1/tasks/{task['id']}")).json()["state"] == "running"


async def test_a_queue_limited_token_cannot_complete_other_queues_tasks(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings()
    limited = {"Authorization": f"Bearer {admin_token(settings, ('tasks:work',), queues=['mine'])}"}
    async with running_app(create_app(settings), admin_token(settings)) as client:
        (theirs,) = await claimed(client, 1, queue="theirs")
        (mine,) = await claimed(client, 1, queue="mine")
        items = [{"task_id": t["id"], "lease_token": t["lease"]["token"]} for t in (theirs, mine)]
        body = (
            await client.post("/v1/tasks/complete", json={"items": items}, headers=limited)
        ).json()
        assert [r["status"] for r in body["results"]] == [404, 200]
        assert (await client.get(f"/v1/tasks/{theirs['id']}")).json()["state"] == "running"


async def test_each_item_counts_against_the_rate_limit(make_settings: SettingsFactory) -> None:
    settings = make_settings(rate_limit_work="5/hour")
    async with running_app(create_app(settings), admin_token(settings)) as client:
        tasks = await claimed(client, 4)  # the claim counted one
        items = [{"task_id": t["id"], "lease_token": t["lease"]["token"]} for t in tasks]
        assert (await client.post("/v1/tasks/complete", json={"items": items})).status_code == 200
        assert (
            await client.post("/v1/tasks/complete", json={"items": items[:1]})
        ).status_code == 429
