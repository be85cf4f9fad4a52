"""/metrics in process: what each request and each task event counts, the queue gauges
read from the database, label hygiene, and apps that never share counts."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from app.core.clock import FixedClock
from tests.conftest import AppFactory
from tests.scrape import Scrape, assert_promtool_accepts

pytestmark = pytest.mark.anyio


async def scrape(client: httpx.AsyncClient) -> Scrape:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return Scrape(response.text)


async def submit(client: httpx.AsyncClient, queue: str, **body: Any) -> dict[str, Any]:
    response = await client.post(f"/v1/queues/{queue}/tasks", json={"type": "t"} | body)
    assert response.status_code == 201, response.text
    task: dict[str, Any] = response.json()
    return task


async def claim(client: httpx.AsyncClient, queue: str, **body: Any) -> list[dict[str, Any]]:
    response = await client.post(f"/v1/queues/{queue}/claim", json={"worker_id": "w"} | body)
    assert response.status_code == 200, response.text
    tasks: list[dict[str, Any]] = response.json()["tasks"]
    return tasks


def lease(task: dict[str, Any]) -> dict[str, str]:
    return {"lease_token": task["lease"]["token"]}


async def test_task_events_are_counted_per_queue(start_app: AppFactory) -> None:
    clock = FixedClock()
    async with start_app(clock=clock) as client:
        for n in range(6):
            await submit(client, "mail", payload=n)
        replay = await client.post(
            "/v1/queues/mail/tasks", json={"type": "t", "payload": 0, "idempotency_key": "k"}
        )
        again = await client.post(
            "/v1/queues/mail/tasks", json={"type": "t", "payload": 0, "idempotency_key": "k"}
        )
        assert (replay.status_code, again.status_code) == (201, 200)
        batch = {"tasks": [{"type": "t"}, {"type": "t"}, {"type": "t", "priority": "urgent"}]}
        assert (await client.post("/v1/queues/other/tasks/batch", json=batch)).status_code == 200
        cancelled = await submit(client, "mail")
        assert (await client.post(f"/v1/tasks/{cancelled['id']}/cancel")).status_code == 200

        done, retried, buried, batch_done, batch_buried = await claim(client, "mail", max_tasks=5)
        await client.post(f"/v1/tasks/{done['id']}/complete", json=lease(done))
        await client.post(f"/v1/tasks/{retried['id']}/fail", json=lease(retried))
        await client.post(f"/v1/tasks/{buried['id']}/fail", json=lease(buried) | {"retry": False})
        items = [{"task_id": batch_done["id"], **lease(batch_done)}]
        assert (await client.post("/v1/tasks/complete", json={"items": items})).status_code == 200
        items = [{"task_id": batch_buried["id"], **lease(batch_buried), "retry": False}]
        assert (await client.post("/v1/tasks/fail", json={"items": items})).status_code == 200
        # A stale lease is refused and counts nothing.
        refused = await client.post(f"/v1/tasks/{done['id']}/complete", json=lease(done))
        assert refused.status_code == 409

        metrics = await scrape(client)
    assert metrics.value("taskgate_tasks_submitted_total", queue="mail") == 8
    assert metrics.value("taskgate_tasks_submitted_total", queue="other") == 2
    assert metrics.value("taskgate_tasks_claimed_total", queue="mail") == 5
    assert metrics.value("taskgate_tasks_succeeded_total", queue="mail") == 2
    assert metrics.value("taskgate_tasks_failed_total", queue="mail") == 3
    assert metrics.value("taskgate_tasks_retried_total", queue="mail") == 1
    assert metrics.value("taskgate_tasks_dead_total", queue="mail") == 2
    assert metrics.value("taskgate_tasks_cancelled_total", queue="mail") == 1
    assert metrics.value("taskgate_lease_expiries_total", queue="mail") == 0


async def test_an_expired_lease_is_counted_with_what_became_of_the_task(
    start_app: AppFactory,
) -> None:
    clock = FixedClock()
    async with start_app(clock=clock, default_max_attempts=1) as client:
        await submit(client, "q", max_attempts=2)
        await submit(client, "q")
        await claim(client, "q", max_tasks=2, lease_seconds=5)
        clock.advance(6)
        metrics = await scrape(client)
        for _ in range(200):  # the sweeper runs every 0.05 s in tests
            if metrics.value("taskgate_lease_expiries_total", queue="q") == 2:
                break
            await asyncio.sleep(0.02)
            metrics = await scrape(client)
    assert metrics.value("taskgate_lease_expiries_total", queue="q") == 2
    assert metrics.value("taskgate_tasks_retried_total", queue="q") == 1
    assert metrics.value("taskgate_tasks_dead_total", queue="q") == 1
    assert metrics.value("taskgate_tasks_failed_total", queue="q") == 0


async def test_queue_gauges_match_the_queue_stats(start_app: AppFactory) -> None:
    clock = FixedClock()
    async with start_app(clock=clock) as client:
        for _ in range(3):
            await submit(client, "work")
        clock.advance(4)
        await submit(client, "work")
        await submit(client, "work", delay_seconds=60)
        buried, running = await claim(client, "work", max_tasks=2)
        await client.post(f"/v1/tasks/{buried['id']}/fail", json=lease(buried) | {"retry": False})
        await client.post("/v1/queues/idle/pause", json={"reason": "maintenance"})
        stats = (await client.get("/v1/queues/work")).json()
        metrics = await scrape(client)

    def gauge(queue: str, state: str) -> float:
        return metrics.value("taskgate_queue_tasks", queue=queue, state=state)

    assert (gauge("work", "due"), stats["counts"]["due"]) == (2, 2)
    assert (gauge("work", "scheduled"), stats["counts"]["scheduled"]) == (1, 1)
    assert (gauge("work", "running"), stats["counts"]["running"]) == (1, 1)
    assert (gauge("work", "dead"), stats["counts"]["dead"]) == (1, 1)
    # The oldest task still due was submitted 4 s (of the fixed clock) ago.
    assert metrics.value("taskgate_queue_oldest_due_age_seconds", queue="work") == 4.0
    assert stats["oldest_due_age_seconds"] == 4.0
    assert [gauge("idle", state) for state in ("due", "scheduled", "running", "dead")] == [0] * 4
    assert metrics.value("taskgate_queue_oldest_due_age_seconds", queue="idle") == 0
    assert metrics.value("taskgate_queue_paused", queue="idle") == 1
    assert metrics.value("taskgate_queue_paused", queue="work") == 0
    assert running["id"] != buried["id"]


async def test_requests_are_labelled_by_route_template_never_by_path(
    start_app: AppFactory,
) -> None:
    async with start_app() as client:
        task = await submit(client, "labels")
        assert (await client.get(f"/v1/tasks/{task['id']}")).status_code == 200
        assert (await client.get("/v1/tasks/01J0000000000000000000NONE")).status_code == 404
        assert (await client.get("/no/such/path")).status_code == 404
        assert (await client.put("/v1/tasks")).status_code == 405
        assert (await client.request("BREW", "/v1/tasks")).status_code == 405
        assert (await client.get("/docs/static/swagger-ui.css")).status_code == 200
        metrics = await scrape(client)
    requests = "taskgate_http_requests_total"
    assert metrics.value(requests, route="/v1/queues/{queue}/tasks", method="POST", status="201")
    assert metrics.value(requests, route="/v1/tasks/{task_id}", method="GET", status="200") == 1
    assert metrics.value(requests, route="/v1/tasks/{task_id}", method="GET", status="404") == 1
    assert metrics.value(requests, route="unmatched", method="GET", status="404") == 1
    assert metrics.value(requests, route="/v1/tasks", method="PUT", status="405") == 1
    assert metrics.value(requests, route="/v1/tasks", method="other", status="405") == 1
    assert metrics.value(requests, route="/docs/static", method="GET", status="200") == 1
    duration = "taskgate_http_request_duration_seconds_count"
    assert metrics.value(duration, route="/v1/tasks/{task_id}", method="GET") == 2
    assert metrics.label_values(requests, "route") == {
        "/v1/queues/{queue}/tasks",
        "/v1/tasks/{task_id}",
        "/v1/tasks",
        "/docs/static",
        "unmatched",
    }
    assert "/no/such/path" not in metrics.text
    assert task["id"] not in metrics.text


async def test_claim_waits_are_observed_by_outcome(start_app: AppFactory) -> None:
    async with start_app() as client:
        assert await claim(client, "polls", wait_seconds=0.05) == []
        await submit(client, "polls")
        assert len(await claim(client, "polls", wait_seconds=1)) == 1
        metrics = await scrape(client)
    waits = "taskgate_claim_wait_seconds_count"
    assert metrics.value(waits, queue="polls", outcome="empty") == 1
    assert metrics.value(waits, queue="polls", outcome="tasks") == 1
    assert metrics.value("taskgate_tasks_claimed_total", queue="polls") == 1


async def test_each_app_counts_alone(start_app: AppFactory) -> None:
    async with start_app() as first, start_app() as second:
        for _ in range(3):
            await submit(first, "shared-name")
        await submit(second, "shared-name")
        first_metrics, second_metrics = await scrape(first), await scrape(second)
    assert first_metrics.value("taskgate_tasks_submitted_total", queue="shared-name") == 3
    assert second_metrics.value("taskgate_tasks_submitted_total", queue="shared-name") == 1


async def test_the_scrape_passes_promtool_and_keeps_process_metrics(
    start_app: AppFactory,
) -> None:
    async with start_app() as client:
        task = await submit(client, "lint")
        await claim(client, "lint")
        await client.post(f"/v1/tasks/{task['id']}/cancel")
        metrics = await scrape(client)
    # One process counts in memory, so its process and runtime metrics are meaningful.
    assert metrics.value("process_cpu_seconds_total") > 0
    assert metrics.types["taskgate_http_request_duration_seconds"] == "histogram"
    assert metrics.types["taskgate_queue_tasks"] == "gauge"
    assert_promtool_accepts(metrics.text)
