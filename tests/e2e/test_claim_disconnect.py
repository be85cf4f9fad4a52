"""A worker that hangs up during a long-poll claim is not handed the next task."""

from __future__ import annotations

import json
import socket
import time
from concurrent.futures import ThreadPoolExecutor

from .harness import LONG_POLL_TIMEOUT, ServerFactory, wait_for_worker


def test_a_claim_whose_client_hung_up_leases_nothing(start_server: ServerFactory) -> None:
    server = start_server()
    body = json.dumps({"worker_id": "gone", "wait_seconds": 20}).encode()
    request = (
        f"POST /v1/queues/q/claim HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {server.token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    with server.client() as client:
        with socket.create_connection(("127.0.0.1", server.port)) as ghost:
            ghost.sendall(request)
            wait_for_worker(client, "gone")  # the long-poll is waiting in the server
        submitted = client.post("/v1/queues/q/tasks", json={"type": "t"}).json()
        # Give a leaked long-poll every chance to take the task before looking.
        time.sleep(0.5)
        task = client.get(f"/v1/tasks/{submitted['id']}").json()
        assert task["state"] == "queued" and task["attempts"] == 0
        claimed = client.post("/v1/queues/q/claim", json={"worker_id": "alive"}).json()
        assert [t["id"] for t in claimed["tasks"]] == [submitted["id"]]


def test_a_wake_up_the_gone_client_got_is_passed_to_a_live_claim(
    start_server: ServerFactory,
) -> None:
    # A submit wakes only as many waiting claims as it made tasks, the longest waiting
    # first: here the hung-up one, which hands the wake-up on (and the change poll would
    # wake the live claim within wake_poll_seconds anyway).
    server = start_server()
    body = json.dumps({"worker_id": "gone", "wait_seconds": 20}).encode()
    request = (
        f"POST /v1/queues/q/claim HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {server.token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    with (
        server.client() as client,
        server.client(timeout=LONG_POLL_TIMEOUT) as poller,
        ThreadPoolExecutor(1) as pool,
    ):
        with socket.create_connection(("127.0.0.1", server.port)) as ghost:
            ghost.sendall(request)
            wait_for_worker(client, "gone")
        live = pool.submit(
            poller.post, "/v1/queues/q/claim", json={"worker_id": "alive", "wait_seconds": 20}
        )
        wait_for_worker(client, "alive")
        submitted = client.post("/v1/queues/q/tasks", json={"type": "t"}).json()

        claimed = live.result(timeout=30).json()

    assert [t["id"] for t in claimed["tasks"]] == [submitted["id"]]
