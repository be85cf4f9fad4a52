"""SIGTERM is a graceful stop: waiting long-polls get an empty answer, the exit code is 0."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from .harness import LONG_POLL_TIMEOUT, ServerFactory, wait_for_worker


@pytest.mark.parametrize("workers", [1, 2], ids=["uvicorn", "gunicorn"])
def test_sigterm_answers_waiting_claims_and_exits_cleanly(
    start_server: ServerFactory, workers: int
) -> None:
    server = start_server(workers=workers)
    with server.client() as http:
        kept = http.post("/v1/queues/kept/tasks", json={"type": "t", "payload": {"keep": "me"}})
        assert kept.status_code == 201, kept.text
        kept_id = kept.json()["id"]

    with (
        server.client(timeout=LONG_POLL_TIMEOUT) as poller,
        server.client() as observer,
        ThreadPoolExecutor(1) as pool,
    ):
        claim = pool.submit(
            poller.post, "/v1/queues/idle/claim", json={"worker_id": "sleeper", "wait_seconds": 20}
        )
        wait_for_worker(observer, "sleeper")
        server.terminate()
        answered = claim.result(timeout=30)  # a dropped connection raises here
    assert answered.status_code == 200, answered.text
    assert answered.json() == {"tasks": []}

    exit_code = server.wait_exit()
    assert exit_code == 0, f"exit code {exit_code} after SIGTERM\n{server.output_tail()}"

    server.restart()
    with server.client() as http:
        read = http.get(f"/v1/tasks/{kept_id}")
    assert read.status_code == 200, read.text
    assert read.json()["payload"] == {"keep": "me"}
    assert read.json()["state"] == "queued"
