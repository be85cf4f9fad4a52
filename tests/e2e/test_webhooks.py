"""Push delivery end to end: a real server POSTs to a real, signature-checking receiver."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.dispatch.signing import new_secret

from .harness import (
    ServerFactory,
    ServerProcess,
    assert_problem,
    free_port,
    wait_until,
)
from .receiver_support import Receiver, run_receiver

FAST_RETRY = {
    "initial_delay_seconds": 0.05,
    "factor": 1,
    "max_delay_seconds": 0.05,
    "jitter": False,
}


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    with run_receiver(tmp_path) as running:
        yield running


@pytest.fixture
def server(start_server_on_backend: ServerFactory) -> ServerProcess:
    return start_server_on_backend(webhook_allow="127.0.0.1/32", sweep_interval_seconds=0.1)


def make_push(
    client: httpx.Client, queue: str, url: str, secret: str, **webhook: Any
) -> dict[str, Any]:
    body = {
        "delivery": "push",
        "max_attempts": webhook.pop("max_attempts", 3),
        "retry": FAST_RETRY,
        "webhook": {"url": url, "signing_secrets": [secret], "timeout_seconds": 5, **webhook},
    }
    response = client.patch(f"/v1/queues/{queue}", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def submit(client: httpx.Client, queue: str, script: list[str], **extra: Any) -> str:
    response = client.post(
        f"/v1/queues/{queue}/tasks",
        json={"type": "scripted", "payload": {"script": script}, **extra},
    )
    assert response.status_code == 201, response.text
    task_id: str = response.json()["id"]
    return task_id


def wait_state(
    client: httpx.Client, task_id: str, state: str, timeout_s: float = 20
) -> dict[str, Any]:
    task: dict[str, Any] = {}

    def reached() -> bool:
        nonlocal task
        task = client.get(f"/v1/tasks/{task_id}").json()
        return bool(task["state"] == state)

    wait_until(reached, f"task {task_id} to be {state} (last seen: {task})", timeout_s)
    return task


def test_every_task_is_delivered_signed_and_its_answer_is_the_result(
    server: ServerProcess, receiver: Receiver
) -> None:
    with server.client() as client:
        queue = make_push(client, "hooks", receiver.url, receiver.secret)
        assert queue["delivery"] == "push"
        assert queue["webhook"]["signing_secrets"] == [receiver.secret]
        shown = client.get("/v1/queues/hooks").json()["webhook"]["signing_secrets"]
        assert shown == [f"whsec_…{receiver.secret[-4:]}"]
        ids = [submit(client, "hooks", ["200"], tags=[f"n{i}"]) for i in range(40)]
        results = {task_id: wait_state(client, task_id, "succeeded") for task_id in ids}
        claim = client.post("/v1/queues/hooks/claim", json={"worker_id": "puller"})
        assert_problem(claim, 409)
    for task_id, task in results.items():
        assert task["result"] == {"handled": task_id, "attempt": 1}
        assert task["attempts"] == 1
    deliveries = receiver.deliveries()
    assert len(deliveries) == 40
    assert all(entry["verified"] for entry in deliveries)
    assert {entry["webhook_id"] for entry in deliveries} == set(ids)
    first = deliveries[0]
    assert first["task"]["queue"] == "hooks" and first["task"]["type"] == "scripted"
    assert first["task"]["max_attempts"] == 3
    assert first["user_agent"].startswith("taskgate/")
    assert first["host"] == receiver.url.split("/")[2]


def test_a_503_then_200_is_delivered_again_with_the_same_webhook_id(
    server: ServerProcess, receiver: Receiver
) -> None:
    with server.client() as client:
        make_push(client, "flaky", receiver.url, receiver.secret)
        task_id = submit(client, "flaky", ["503", "200"])
        task = wait_state(client, task_id, "succeeded")
    assert task["attempts"] == 2
    assert [error["type"] for error in task["errors"]] == ["webhook.http_503"]
    deliveries = receiver.for_task(task_id)
    assert [entry["task"]["attempt"] for entry in deliveries] == [1, 2]
    assert all(entry["verified"] for entry in deliveries)


def test_retry_after_on_a_429_sets_the_delay(server: ServerProcess, receiver: Receiver) -> None:
    with server.client() as client:
        make_push(client, "throttled", receiver.url, receiver.secret)
        task_id = submit(client, "throttled", ["429:2", "200"])
        wait_state(client, task_id, "succeeded")
    first, second = receiver.for_task(task_id)
    # Without Retry-After the queue's backoff would retry after 0.05 s.
    assert second["received_at"] - first["received_at"] >= 1.9


def test_a_receiver_that_is_down_exhausts_the_attempts(
    start_server_on_backend: ServerFactory,
) -> None:
    server = start_server_on_backend(webhook_allow="127.0.0.1/32")
    nobody = f"http://127.0.0.1:{free_port()}/hook"
    with server.client() as client:
        make_push(client, "down", nobody, new_secret(), max_attempts=3)
        task_id = submit(client, "down", ["200"])
        task = wait_state(client, task_id, "dead")
        dead = client.get("/v1/queues/down/dead").json()["tasks"]
    assert task["attempts"] == 3
    assert [error["type"] for error in task["errors"]] == ["webhook.connection"] * 3
    assert [t["id"] for t in dead] == [task_id]


def test_client_errors_are_final_and_redirects_are_not_followed(
    server: ServerProcess, receiver: Receiver
) -> None:
    with server.client() as client:
        make_push(client, "strict", receiver.url, receiver.secret)
        bad = submit(client, "strict", ["400"])
        moved = submit(client, "strict", ["redirect"])
        bad_task = wait_state(client, bad, "dead")
        moved_task = wait_state(client, moved, "dead")
    assert bad_task["attempts"] == 1 and bad_task["errors"][0]["type"] == "webhook.http_400"
    assert moved_task["errors"][0]["type"] == "webhook.http_307"
    assert len(receiver.for_task(moved)) == 1


def test_a_410_pauses_the_queue_and_keeps_the_task(
    server: ServerProcess, receiver: Receiver
) -> None:
    with server.client() as client:
        make_push(client, "gone", receiver.url, receiver.secret)
        task_id = submit(client, "gone", ["410", "200"])
        wait_until(lambda: client.get("/v1/queues/gone").json()["paused"], "the queue to be paused")
        queue = client.get("/v1/queues/gone").json()
        task = client.get(f"/v1/tasks/{task_id}").json()
        assert "410" in queue["pause_reason"]
        assert task["state"] == "queued" and task["attempts"] == 0
        client.post("/v1/queues/gone/resume").raise_for_status()
        task = wait_state(client, task_id, "succeeded")
    assert task["attempts"] == 1
    assert len(receiver.for_task(task_id)) == 2


def test_limits_hold_across_two_server_processes(
    start_server_on_backend: ServerFactory, receiver: Receiver
) -> None:
    server = start_server_on_backend(webhook_allow="127.0.0.1/32", workers=2)
    with server.client() as client:
        make_push(client, "limited", receiver.url, receiver.secret, max_concurrency=2)
        ids = [submit(client, "limited", ["sleep:0.2"]) for _ in range(12)]
        for task_id in ids:
            wait_state(client, task_id, "succeeded")
    deliveries = receiver.deliveries()
    assert len(deliveries) == 12
    assert max(entry["in_flight"] for entry in deliveries) <= 2


def test_dispatch_rate_is_limited(server: ServerProcess, receiver: Receiver) -> None:
    with server.client() as client:
        make_push(client, "paced", receiver.url, receiver.secret, max_dispatches_per_second=5)
        ids = [submit(client, "paced", ["200"]) for _ in range(10)]
        tasks = [wait_state(client, task_id, "succeeded") for task_id in ids]
    assert len(receiver.deliveries()) == 10
    # A burst of 5, then one every 0.2 s: the 10th cannot be claimed for delivery less than
    # 1 s after the first (by the server's clock, which is what the limit is counted on;
    # the receiver's clock would add the deliveries' varying latency).
    started = sorted(datetime.fromisoformat(task["started_at"]) for task in tasks)
    assert (started[-1] - started[0]).total_seconds() >= 1.0, started


def test_sigterm_hands_a_delivery_in_flight_back_and_it_is_delivered_again(
    start_server_on_backend: ServerFactory, receiver: Receiver
) -> None:
    server = start_server_on_backend(webhook_allow="127.0.0.1/32", graceful_timeout_seconds=1)
    with server.client() as client:
        make_push(client, "slow", receiver.url, receiver.secret, timeout_seconds=60)
        task_id = submit(client, "slow", ["sleep:30", "200"])
        wait_until(lambda: len(receiver.for_task(task_id)) == 1, "the first delivery")
    server.terminate()
    assert server.wait_exit() == 0
    server.restart()
    with server.client() as client:
        task = wait_state(client, task_id, "succeeded")
    assert task["attempts"] == 1
    assert [entry["delivery"] for entry in receiver.for_task(task_id)] == [1, 2]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://[::1]/hook",
        "http://10.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://2130706433/hook",
        "http://0177.0.0.1/hook",
        "http://localhost:8080/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://100.64.0.1/hook",
        "ftp://8.8.8.8/hook",
        "http://user:pw@8.8.8.8/hook",
    ],
)
def test_ssrf_probes_are_refused_and_change_nothing(
    start_server_on_backend: ServerFactory, url: str
) -> None:
    server = start_server_on_backend()
    with server.client() as client:
        response = client.patch(
            "/v1/queues/probe", json={"delivery": "push", "webhook": {"url": url}}
        )
        problem = assert_problem(response, 422)
        assert problem["errors"][0]["field"] == "body.webhook.url"
        assert client.get("/v1/queues/probe").status_code == 404
