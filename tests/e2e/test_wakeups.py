"""Long-poll claims wake for new work: same process, another process on the same file, delays.

Each claim waits up to 20 s; without the wake-up it would come back empty only at the end,
so asserting on the task it returns (not on how long it took) is enough.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import httpx

from .harness import LONG_POLL_TIMEOUT, ServerFactory, ServerProcess, wait_for_worker

WAIT_SECONDS = 20
CLAIM_LEASE_SECONDS = 60


def _claim_while(
    claim_on: ServerProcess,
    queue: str,
    worker_id: str,
    submit: httpx.Client,
    body: dict[str, object],
) -> tuple[str, httpx.Response]:
    """Start a long-poll claim on `claim_on`, submit `body` through `submit` once the claim
    is registered, and return the submitted task id and the claim's response."""
    with (
        claim_on.client(timeout=LONG_POLL_TIMEOUT) as poller,
        claim_on.client() as observer,
        ThreadPoolExecutor(1) as pool,
    ):
        claim = pool.submit(
            poller.post,
            f"/v1/queues/{queue}/claim",
            json={
                "worker_id": worker_id,
                "wait_seconds": WAIT_SECONDS,
                "lease_seconds": CLAIM_LEASE_SECONDS,
            },
        )
        wait_for_worker(observer, worker_id)
        created = submit.post(f"/v1/queues/{queue}/tasks", json=body)
        assert created.status_code == 201, created.text
        return created.json()["id"], claim.result(timeout=WAIT_SECONDS + 15)


def _claimed_ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [task["id"] for task in response.json()["tasks"]]


def test_claim_on_one_process_wakes_for_a_submit_to_another(start_server: ServerFactory) -> None:
    server_a = start_server(name="server-a")
    server_b = start_server(server_a.database, name="server-b")
    assert server_a.pid != server_b.pid
    with server_b.client() as via_b:
        task_id, claim = _claim_while(
            server_a, "cross", "waiter-a", via_b, {"type": "t", "payload": {"from": "b"}}
        )
    assert _claimed_ids(claim) == [task_id]
    (leased,) = claim.json()["tasks"]
    assert leased["payload"] == {"from": "b"}
    assert leased["worker_id"] == "waiter-a"


def test_claim_wakes_for_a_submit_to_the_same_process(start_server: ServerFactory) -> None:
    server = start_server()
    with server.client() as http:
        task_id, claim = _claim_while(
            server, "local", "waiter", http, {"type": "t", "payload": {"from": "same"}}
        )
    assert _claimed_ids(claim) == [task_id]


def _parse(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00"))


def test_delayed_task_is_handed_to_a_claim_already_waiting(start_server: ServerFactory) -> None:
    server = start_server()
    with server.client() as http:
        task_id, claim = _claim_while(
            server, "later", "patient", http, {"type": "t", "payload": {}, "delay_seconds": 1}
        )
        assert _claimed_ids(claim) == [task_id]
        (leased,) = claim.json()["tasks"]
        run_at = _parse(leased["run_at"])
        assert run_at - _parse(leased["created_at"]) == timedelta(seconds=1)
        # The lease was granted at the claim time: not before the task was due.
        leased_at = _parse(leased["lease"]["expires_at"]) - timedelta(seconds=CLAIM_LEASE_SECONDS)
        assert leased_at >= run_at


def test_delayed_task_submitted_elsewhere_reaches_a_waiting_claim(
    start_server: ServerFactory,
) -> None:
    server_a = start_server(name="server-a")
    server_b = start_server(server_a.database, name="server-b")
    with server_b.client() as via_b:
        task_id, claim = _claim_while(
            server_a, "later-x", "patient-a", via_b, {"type": "t", "delay_seconds": 1}
        )
    assert _claimed_ids(claim) == [task_id]
