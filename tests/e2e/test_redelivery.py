"""A worker that dies loses its lease: the task is claimed again and the old token is fenced."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from .harness import LONG_POLL_TIMEOUT, ServerFactory, assert_problem, wait_for_worker


def test_expired_lease_is_redelivered_and_the_old_token_is_refused(
    start_server: ServerFactory,
) -> None:
    server = start_server(sweep_interval_seconds=0.1)
    with server.client() as http, server.client(timeout=LONG_POLL_TIMEOUT) as poller:
        created = http.post(
            "/v1/queues/jobs/tasks",
            json={
                "type": "report.build",
                "payload": {"report": 7},
                "retry": {"initial_delay_seconds": 0.1, "jitter": False},
            },
        )
        assert created.status_code == 201, created.text
        task_id = created.json()["id"]

        first = http.post(
            "/v1/queues/jobs/claim", json={"worker_id": "doomed-worker", "lease_seconds": 1}
        )
        assert first.status_code == 200, first.text
        (first_lease,) = first.json()["tasks"]
        assert first_lease["id"] == task_id
        assert first_lease["attempts"] == 1
        dead_token = first_lease["lease"]["token"]
        # The doomed worker never heartbeats nor completes; a second worker waits for work.

        with ThreadPoolExecutor(1) as pool:
            second_claim = pool.submit(
                poller.post,
                "/v1/queues/jobs/claim",
                json={"worker_id": "rescuer", "wait_seconds": 15, "lease_seconds": 60},
            )
            wait_for_worker(http, "rescuer")
            second = second_claim.result(timeout=30)
        assert second.status_code == 200, second.text
        (second_lease,) = second.json()["tasks"]
        assert second_lease["id"] == task_id
        assert second_lease["attempts"] == 2
        assert second_lease["worker_id"] == "rescuer"
        live_token = second_lease["lease"]["token"]
        assert live_token != dead_token
        assert second_lease["last_error"]["type"] == "LeaseExpired"

        late_complete = http.post(
            f"/v1/tasks/{task_id}/complete",
            json={"lease_token": dead_token, "result": {"from": "doomed-worker"}},
        )
        assert_problem(late_complete, 409)
        late_heartbeat = http.post(
            f"/v1/tasks/{task_id}/heartbeat", json={"lease_token": dead_token}
        )
        assert_problem(late_heartbeat, 409)
        late_fail = http.post(
            f"/v1/tasks/{task_id}/fail",
            json={"lease_token": dead_token, "error": {"type": "Late", "message": "too late"}},
        )
        assert_problem(late_fail, 409)

        unchanged = http.get(f"/v1/tasks/{task_id}").json()
        assert unchanged["state"] == "running"
        assert unchanged["result"] is None
        assert unchanged["attempts"] == 2
        assert unchanged["worker_id"] == "rescuer"

        done = http.post(
            f"/v1/tasks/{task_id}/complete",
            json={"lease_token": live_token, "result": {"from": "rescuer"}},
        )
        assert done.status_code == 200, done.text
        assert done.json()["state"] == "succeeded"

        replay = http.post(
            f"/v1/tasks/{task_id}/complete",
            json={"lease_token": dead_token, "result": {"from": "doomed-worker"}},
        )
        assert_problem(replay, 409)
        final = http.get(f"/v1/tasks/{task_id}").json()
        assert final["state"] == "succeeded"
        assert final["result"] == {"from": "rescuer"}
