"""The lifecycle over HTTP in process: idempotency, batches, long-polls, leases, dead letters."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.anyio


async def submit(client: httpx.AsyncClient, queue: str = "q", **body: Any) -> dict[str, Any]:
    response = await client.post(f"/v1/queues/{queue}/tasks", json={"type": "t"} | body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def claim(client: httpx.AsyncClient, queue: str = "q", **body: Any) -> list[dict[str, Any]]:
    response = await client.post(f"/v1/queues/{queue}/claim", json={"worker_id": "w", **body})
    assert response.status_code == 200, response.text
    tasks: list[dict[str, Any]] = response.json()["tasks"]
    return tasks


async def test_idempotency_key_header_or_body(client: httpx.AsyncClient) -> None:
    first = await client.post(
        "/v1/queues/q/tasks", json={"type": "t", "payload": 1}, headers={"Idempotency-Key": "k1"}
    )
    replay = await client.post(
        "/v1/queues/q/tasks", json={"type": "t", "payload": 1, "idempotency_key": "k1"}
    )
    assert (first.status_code, replay.status_code) == (201, 200)
    assert replay.json()["id"] == first.json()["id"]
    assert replay.json()["idempotency_key"] == "k1"
    different = await client.post(
        "/v1/queues/q/tasks", json={"type": "t", "payload": 2}, headers={"Idempotency-Key": "k1"}
    )
    assert different.status_code == 409
    assert "different request" in different.json()["detail"]
    disagree = await client.post(
        "/v1/queues/q/tasks",
        json={"type": "t", "idempotency_key": "a"},
        headers={"Idempotency-Key": "b"},
    )
    assert disagree.status_code == 409


async def test_concurrent_single_submits_each_get_their_own_answer(
    client: httpx.AsyncClient,
) -> None:
    # Submits arriving together are written together; each still answers for itself.
    first = await client.post("/v1/queues/q/tasks", json={"type": "t", "idempotency_key": "k"})
    assert first.status_code == 201
    bodies: list[dict[str, Any]] = [{"type": "t", "payload": n} for n in range(30)]
    bodies += [
        {"type": "t", "idempotency_key": "k"},  # replay of the first
        {"type": "t", "payload": "other", "idempotency_key": "k"},  # same key, other body
        {"type": "t", "run_at": "2026-02-30T00:00:00Z"},  # schema-valid, not a date
        {"type": "t", "payload": "elsewhere"},
    ]
    queues = ["q"] * 33 + ["r"]

    answers = await asyncio.gather(
        *(client.post(f"/v1/queues/{q}/tasks", json=b) for q, b in zip(queues, bodies, strict=True))
    )

    assert [a.status_code for a in answers] == [201] * 30 + [200, 409, 422, 201]
    created = answers[:30] + answers[33:]
    assert len({a.json()["id"] for a in created}) == 31
    assert [a.json()["payload"] for a in answers[:30]] == list(range(30))
    assert answers[30].json()["id"] == first.json()["id"]
    assert answers[33].json()["queue"] == "r"
    for answer in created:
        stored = await client.get(f"/v1/tasks/{answer.json()['id']}")
        assert stored.json() == answer.json()


async def test_batch_results_per_item(client: httpx.AsyncClient) -> None:
    await submit(client, idempotency_key="dup", payload="x")
    response = await client.post(
        "/v1/queues/q/tasks/batch",
        json={
            "tasks": [
                {"type": "t", "payload": 1},
                {"type": "bad type!"},
                {"type": "t", "idempotency_key": "dup", "payload": "x"},
                {"type": "t", "idempotency_key": "dup", "payload": "other"},
                {"type": "t", "run_at": "2030-01-01T00:00:00Z", "priority": "high"},
            ]
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert [r["status"] for r in body["results"]] == [201, 422, 200, 409, 201]
    assert [r["index"] for r in body["results"]] == [0, 1, 2, 3, 4]
    assert body["results"][1]["error"]["errors"][0]["field"] == "body.tasks[1].type"
    assert (body["created"], body["existing"], body["rejected"]) == (2, 1, 2)
    listed = (await client.get("/v1/tasks", params={"queue": "q"})).json()["tasks"]
    assert len(listed) == 3


async def test_delayed_task_is_not_claimed_early(client: httpx.AsyncClient) -> None:
    await submit(client, delay_seconds=3600)
    assert await claim(client) == []
    queue = (await client.get("/v1/queues/q")).json()
    assert queue["counts"]["scheduled"] == 1 and queue["counts"]["due"] == 0


async def test_waiting_claim_is_woken_by_a_submit(client: httpx.AsyncClient) -> None:
    waiting = asyncio.create_task(claim(client, wait_seconds=2))
    await asyncio.sleep(0.1)
    assert not waiting.done()
    created = await submit(client)
    claimed = await waiting
    assert [t["id"] for t in claimed] == [created["id"]]


async def test_get_waits_for_the_task_to_finish(client: httpx.AsyncClient) -> None:
    created = await submit(client)
    (leased,) = await claim(client)
    waiter = asyncio.create_task(client.get(f"/v1/tasks/{created['id']}", params={"wait": 2}))
    await asyncio.sleep(0.1)
    assert not waiter.done()
    await client.post(
        f"/v1/tasks/{created['id']}/complete",
        json={"lease_token": leased["lease"]["token"], "result": 42},
    )
    finished = (await waiter).json()
    assert finished["state"] == "succeeded" and finished["result"] == 42


async def test_cancel_queued_and_running(client: httpx.AsyncClient) -> None:
    queued = await submit(client)
    cancelled = (await client.post(f"/v1/tasks/{queued['id']}/cancel")).json()
    assert cancelled["state"] == "cancelled"
    assert (await client.post(f"/v1/tasks/{queued['id']}/cancel")).status_code == 409
    running = await submit(client)
    (leased,) = await claim(client)
    requested = (await client.post(f"/v1/tasks/{running['id']}/cancel")).json()
    assert requested["state"] == "running" and requested["cancel_requested"] is True
    beat = await client.post(
        f"/v1/tasks/{running['id']}/heartbeat", json={"lease_token": leased["lease"]["token"]}
    )
    assert beat.json()["cancel_requested"] is True


async def test_fail_to_dead_letters_then_redrive_and_purge(client: httpx.AsyncClient) -> None:
    ids = [(await submit(client))["id"] for _ in range(2)]
    for leased in await claim(client, max_tasks=2):
        failed = await client.post(
            f"/v1/tasks/{leased['id']}/fail",
            json={
                "lease_token": leased["lease"]["token"],
                "error": {"type": "ValueError", "message": "bad"},
                "retry": False,
            },
        )
        assert failed.json()["state"] == "dead"
        assert failed.json()["last_error"]["message"] == "bad"
    dead = (await client.get("/v1/queues/q/dead")).json()["tasks"]
    assert sorted(t["id"] for t in dead) == sorted(ids)
    redriven = await client.post("/v1/queues/q/dead/redrive", json={"task_ids": [ids[0]]})
    assert redriven.json() == {"redriven": 1}
    assert (await client.get(f"/v1/tasks/{ids[0]}")).json()["state"] == "queued"
    assert (await client.delete("/v1/queues/q/dead")).json() == {"purged": 1}
    assert (await client.get(f"/v1/tasks/{ids[1]}")).status_code == 404


async def test_retry_after_and_backoff(client: httpx.AsyncClient) -> None:
    created = await submit(client)
    (leased,) = await claim(client)
    failed = await client.post(
        f"/v1/tasks/{created['id']}/fail",
        json={"lease_token": leased["lease"]["token"], "retry_after_seconds": 3600},
    )
    body = failed.json()
    assert body["state"] == "queued" and body["attempts"] == 1
    assert body["run_at"] > body["updated_at"]
    assert await claim(client) == []


async def test_pause_resume_and_configure(client: httpx.AsyncClient) -> None:
    await submit(client)
    paused = await client.post("/v1/queues/q/pause", json={"reason": "maintenance"})
    assert paused.json()["paused"] is True and paused.json()["pause_reason"] == "maintenance"
    assert await claim(client) == []
    await client.post("/v1/queues/q/resume")
    assert len(await claim(client)) == 1
    configured = await client.patch(
        "/v1/queues/q", json={"max_attempts": 9, "retry": {"initial_delay_seconds": 5}}
    )
    config = configured.json()["config"]
    assert config["max_attempts"] == 9 and config["retry"]["initial_delay_seconds"] == 5
    assert (await submit(client))["max_attempts"] == 9
    reset = await client.patch("/v1/queues/q", json={"max_attempts": None})
    assert reset.json()["config"]["max_attempts"] == 5


async def test_workers_show_their_leases(client: httpx.AsyncClient) -> None:
    created = await submit(client)
    await claim(client)
    (worker,) = (await client.get("/v1/workers")).json()["workers"]
    assert worker["id"] == "w" and worker["alive"] is True and worker["in_flight"] == 1
    assert worker["leases"][0]["task_id"] == created["id"]


async def test_list_pages_with_a_cursor(client: httpx.AsyncClient) -> None:
    ids = [(await submit(client, tags=["even"] if i % 2 == 0 else []))["id"] for i in range(5)]
    first = (await client.get("/v1/tasks", params={"limit": 3})).json()
    second = (
        await client.get("/v1/tasks", params={"limit": 3, "cursor": first["next_cursor"]})
    ).json()
    assert [t["id"] for t in first["tasks"] + second["tasks"]] == ids[::-1]
    assert second["next_cursor"] is None
    even = (await client.get("/v1/tasks", params={"tag": "even"})).json()["tasks"]
    assert len(even) == 3


async def test_waiting_claim_on_a_paused_queue_is_woken_by_resume(
    client: httpx.AsyncClient,
) -> None:
    created = await submit(client)
    await client.post("/v1/queues/q/pause")
    waiting = asyncio.create_task(claim(client, wait_seconds=2))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    await client.post("/v1/queues/q/resume")
    assert [t["id"] for t in await waiting] == [created["id"]]


async def test_waiting_claim_for_one_type_ignores_others(client: httpx.AsyncClient) -> None:
    await submit(client, type="other")
    waiting = asyncio.create_task(claim(client, wait_seconds=2, types=["wanted"]))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    wanted = await submit(client, type="wanted")
    assert [t["id"] for t in await waiting] == [wanted["id"]]


async def test_payloads_keep_integers_beyond_64_bits(client: httpx.AsyncClient) -> None:
    created = await client.post(
        "/v1/queues/q/tasks",
        content=b'{"type": "t", "payload": {"big": 123456789012345678901234567890}}',
        headers={"content-type": "application/json"},
    )
    assert created.status_code == 201, created.text
    read = await client.get(f"/v1/tasks/{created.json()['id']}")
    assert b'"big":123456789012345678901234567890' in read.content
