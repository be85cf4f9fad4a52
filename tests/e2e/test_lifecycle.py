"""The task lifecycle over real sockets, on uvicorn (one process) and gunicorn (two)."""

from __future__ import annotations

import pytest

from .harness import ServerFactory, assert_problem

SERVER_KINDS = pytest.mark.parametrize("workers", [1, 2], ids=["uvicorn", "gunicorn"])


@SERVER_KINDS
def test_submit_claim_complete_then_get_shows_the_result(
    start_server: ServerFactory, workers: int
) -> None:
    server = start_server(workers=workers)
    with server.client() as http:
        created = http.post(
            "/v1/queues/emails/tasks",
            json={"type": "email.send", "payload": {"to": "ada@example.com", "n": [1, 2]}},
        )
        assert created.status_code == 201, created.text
        task = created.json()
        assert created.headers["location"] == f"/v1/tasks/{task['id']}"
        assert task["state"] == "queued"
        assert task["payload"] == {"to": "ada@example.com", "n": [1, 2]}

        claimed = http.post(
            "/v1/queues/emails/claim", json={"worker_id": "e2e-worker", "lease_seconds": 30}
        )
        assert claimed.status_code == 200, claimed.text
        (leased,) = claimed.json()["tasks"]
        assert leased["id"] == task["id"]
        assert leased["state"] == "running"
        assert leased["attempts"] == 1
        assert leased["lease"]["token"]

        done = http.post(
            f"/v1/tasks/{task['id']}/complete",
            json={"lease_token": leased["lease"]["token"], "result": {"sent": True}},
        )
        assert done.status_code == 200, done.text
        assert done.json()["state"] == "succeeded"

        read = http.get(f"/v1/tasks/{task['id']}")
        assert read.status_code == 200
        finished = read.json()
        assert finished["state"] == "succeeded"
        assert finished["result"] == {"sent": True}
        assert finished["payload"] == {"to": "ada@example.com", "n": [1, 2]}
        assert finished["attempts"] == 1

        again = http.post("/v1/queues/emails/claim", json={"worker_id": "e2e-worker"})
        assert again.status_code == 200
        assert again.json()["tasks"] == []


@SERVER_KINDS
def test_unknown_task_is_a_404_problem_with_the_request_id(
    start_server: ServerFactory, workers: int
) -> None:
    server = start_server(workers=workers)
    with server.client() as http:
        missing = http.get("/v1/tasks/01JZZZZZZZZZZZZZZZZZZZZZZZ")
        body = assert_problem(missing, 404)
        assert "01JZZZZZZZZZZZZZZZZZZZZZZZ" in body["detail"]
        generated_id = missing.headers["x-request-id"]
        assert generated_id
        assert body["request_id"] == generated_id

        traced = http.get("/v1/tasks/01JZZZZZZZZZZZZZZZZZZZZZZZ", headers={"X-Request-ID": "e2e-1"})
        assert traced.headers["x-request-id"] == "e2e-1"
        assert assert_problem(traced, 404)["request_id"] == "e2e-1"

        no_route = http.get("/v1/no-such-thing")
        assert_problem(no_route, 404)
        assert no_route.headers["x-request-id"]

        health = http.get("/healthz")
        assert health.status_code == 200
        assert health.headers["x-request-id"]
        assert health.headers["x-request-id"] != generated_id
