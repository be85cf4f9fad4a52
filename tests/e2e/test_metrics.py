"""/metrics from real servers: under gunicorn with two workers the counts of both add up,
the queue gauges match the queue stats, promtool accepts the scrape, a replaced worker's
counts stay, and the metrics directory lives exactly as long as the server; a server of
one process counts in memory."""

from __future__ import annotations

import contextlib
import os
import signal
import struct
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.multiprocess import MultiProcessCollector

from tests.scrape import Scrape, assert_promtool_accepts

from .harness import (
    EXIT_TIMEOUT_S,
    REPO_ROOT,
    ServerFactory,
    ServerProcess,
    clean_env,
    free_port,
    wait_until,
)

# The push receiver and its helpers are test_webhooks.py's (a fixture imported by name).
from .test_webhooks import Receiver, make_push, receiver, submit, wait_state  # noqa: F401

SUBMITTED = "taskgate_tasks_submitted_total"
HEALTHZ = {"route": "/healthz", "method": "GET", "status": "200"}


def scrape(client: httpx.Client) -> Scrape:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    return Scrape(response.text)


def metrics_dir_of(server: ServerProcess) -> Path | None:
    """The multiprocess directory the server's gunicorn master made, if any."""
    found = list(server.temp_dir.glob(f"taskgate-metrics-{server.pid}-*"))
    assert len(found) <= 1, found
    return found[0] if found else None


def shares(directory: Path, name: str, **labels: str) -> dict[int, float]:
    """Each worker's own part of a counter, read from that worker's file alone."""
    parts: dict[int, float] = {}
    for path in directory.glob("counter_*.db"):
        pid = int(path.stem.removeprefix("counter_"))
        try:
            merged = MultiProcessCollector.merge([str(path)])
        except (ValueError, OSError, struct.error):
            continue  # the worker made its file and has not written it yet
        for metric in merged:
            for sample in metric.samples:
                if sample.name == name and sample.labels == labels:
                    parts[pid] = sample.value
    return parts


def workers_of(master_pid: int) -> set[int]:
    """The live child processes of the gunicorn master (Linux /proc)."""
    children = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == master_pid and fields[0] not in ("Z", "X"):
                children.add(int(entry.name))
    return children


def in_parallel(calls: list[Callable[[], Any]]) -> list[Any]:
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda call: call(), calls))


def test_two_workers_count_as_one_server(
    start_server: ServerFactory,
    receiver: Receiver,  # noqa: F811 - the fixture imported above
) -> None:
    server = start_server(workers=2, sweep_interval_seconds=0.1, webhook_allow="127.0.0.1/32")
    directory = metrics_dir_of(server)
    assert directory is not None and directory.is_dir()
    # No keep-alive: every request is a new connection, which either worker may accept.
    fresh = httpx.Client(
        base_url=server.base_url,
        headers=server.auth_headers(),
        timeout=10,
        limits=httpx.Limits(max_keepalive_connections=0),
    )
    with fresh, server.client() as client:
        # Pull: submit until both workers have created tasks of the queue.
        submitted = 0
        while len(shares(directory, SUBMITTED, queue="pull")) < 2:
            assert submitted < 400, "every submit went to the same worker"
            in_parallel([lambda: submit(fresh, "pull", ["-"]) for _ in range(20)])
            submitted += 20
        first = client.post("/v1/queues/pull/tasks", json={"type": "t", "idempotency_key": "k"})
        replay = client.post("/v1/queues/pull/tasks", json={"type": "t", "idempotency_key": "k"})
        assert (first.status_code, replay.status_code) == (201, 200)
        submit(client, "pull", ["-"], delay_seconds=3600)
        submitted += 2
        cancelled = submit(client, "pull", ["-"])
        submitted += 1
        assert client.post(f"/v1/tasks/{cancelled}/cancel").status_code == 200

        claims = in_parallel(
            [
                lambda n=n: fresh.post(
                    "/v1/queues/pull/claim", json={"worker_id": f"w{n}", "max_tasks": 3}
                ).json()["tasks"]
                for n in range(4)
            ]
        )
        leased = [task for tasks in claims for task in tasks]
        assert len(leased) == 12
        to_complete, retried, buried = leased[:8], leased[8], leased[9]
        in_parallel(
            [
                lambda task=task: fresh.post(
                    f"/v1/tasks/{task['id']}/complete", json={"lease_token": task["lease"]["token"]}
                ).raise_for_status()
                for task in to_complete
            ]
        )
        for task, retry in ((retried, True), (buried, False)):
            fresh.post(
                f"/v1/tasks/{task['id']}/fail",
                json={"lease_token": task["lease"]["token"], "retry": retry},
            ).raise_for_status()

        # A lease left to run out, for the sweeper of either worker to expire.
        submit(client, "expiring", ["-"])
        claimed = client.post(
            "/v1/queues/expiring/claim", json={"worker_id": "gone", "lease_seconds": 1}
        )
        assert len(claimed.json()["tasks"]) == 1

        # Push: four deliveries succeed, one of them on its second attempt.
        make_push(client, "hooks", receiver.url, receiver.secret)
        pushed = [submit(client, "hooks", ["200"]) for _ in range(3)]
        pushed.append(submit(client, "hooks", ["503", "200"]))
        for task_id in pushed:
            wait_state(client, task_id, "succeeded")

        wait_until(
            lambda: scrape(client).value("taskgate_lease_expiries_total", queue="expiring") == 1,
            "the expired lease to be counted",
        )
        metrics = scrape(client)
        pull_stats = client.get("/v1/queues/pull").json()

        # Counted once, whichever worker did it.
        assert metrics.value(SUBMITTED, queue="pull") == submitted
        worker_parts = shares(directory, SUBMITTED, queue="pull")
        assert len(worker_parts) == 2 and all(part > 0 for part in worker_parts.values())
        assert sum(worker_parts.values()) == submitted
        assert metrics.value("taskgate_tasks_claimed_total", queue="pull") == 12
        assert metrics.value("taskgate_tasks_succeeded_total", queue="pull") == 8
        assert metrics.value("taskgate_tasks_failed_total", queue="pull") == 2
        assert metrics.value("taskgate_tasks_retried_total", queue="pull") == 1
        assert metrics.value("taskgate_tasks_dead_total", queue="pull") == 1
        assert metrics.value("taskgate_tasks_cancelled_total", queue="pull") == 1
        assert metrics.value("taskgate_tasks_retried_total", queue="expiring") == 1
        created = "taskgate_http_requests_total"
        route = "/v1/queues/{queue}/tasks"
        # Created: the pull queue's, one on `expiring`, four on `hooks`; the replay is a 200.
        assert metrics.value(created, route=route, method="POST", status="201") == submitted + 5
        assert metrics.value(created, route=route, method="POST", status="200") == 1
        assert metrics.value(
            "taskgate_http_request_duration_seconds_count", route=route, method="POST"
        ) == (submitted + 6)
        assert metrics.value("taskgate_claim_wait_seconds_count", queue="pull", outcome="tasks")
        # Push deliveries: claimed and applied by the dispatchers of both workers.
        deliveries = "taskgate_webhook_deliveries_total"
        assert metrics.value(deliveries, queue="hooks", outcome="delivered") == 4
        assert metrics.value(deliveries, queue="hooks", outcome="failed") == 1
        assert metrics.value("taskgate_webhook_delivery_duration_seconds_count", queue="hooks") == 5
        assert metrics.value("taskgate_tasks_claimed_total", queue="hooks") == 5
        assert metrics.value("taskgate_tasks_succeeded_total", queue="hooks") == 4

        # The queue gauges are the database's, as the queue stats show it.
        for state in ("due", "scheduled", "running", "dead"):
            gauge = metrics.value("taskgate_queue_tasks", queue="pull", state=state)
            assert gauge == pull_stats["counts"][state], state
        assert pull_stats["counts"]["running"] == 2 and pull_stats["counts"]["scheduled"] == 1
        assert metrics.value("taskgate_queue_oldest_due_age_seconds", queue="pull") > 0
        assert metrics.value("taskgate_queue_paused", queue="hooks") == 0
        assert_promtool_accepts(metrics.text)

        # A worker that dies is replaced (child_exit runs in the master); what it counted
        # stays in the totals, and the directory stays.
        leaving = next(iter(worker_parts))
        os.kill(leaving, signal.SIGTERM)
        wait_until(
            lambda: leaving not in workers_of(server.pid) and len(workers_of(server.pid)) == 2,
            "gunicorn to replace the worker",
            timeout_s=20,
        )
        after = scrape(client)
        assert after.value(SUBMITTED, queue="pull") == submitted
        assert after.value("taskgate_tasks_succeeded_total", queue="hooks") == 4
        assert directory.is_dir()

    server.terminate()
    assert server.wait_exit() == 0
    assert not directory.exists()


def test_one_process_counts_in_memory(start_server: ServerFactory) -> None:
    server = start_server()
    with server.client() as client:
        for _ in range(3):
            submit(client, "solo", ["-"])
        metrics = scrape(client)
    assert metrics_dir_of(server) is None
    assert metrics.value(SUBMITTED, queue="solo") == 3
    assert metrics.value("taskgate_queue_tasks", queue="solo", state="due") == 3
    assert metrics.value("process_resident_memory_bytes") > 0
    assert_promtool_accepts(metrics.text)


def assert_healthz_count(client: httpx.Client, expected: int) -> None:
    """The scrape counts `expected` /healthz requests, once the last ones are recorded.

    A request is counted after its answer is sent, so a scrape right after the answer may
    come a moment too early; more than `expected` is a failure at once."""

    def counted() -> bool:
        value = scrape(client).value("taskgate_http_requests_total", **HEALTHZ)
        assert value <= expected
        return value == expected

    wait_until(counted, f"{expected} /healthz requests to be counted", 10.0, 0.05)


def test_deploy_gunicorn_conf_sets_up_multiprocess_metrics(tmp_path: Path) -> None:
    port = free_port()
    env = clean_env(
        {
            "TASKGATE_DATABASE": str(tmp_path / "taskgate.db"),
            "TASKGATE_PORT": str(port),
            "TASKGATE_WORKERS": "2",
            "TASKGATE_METRICS_AUTH": "false",
            "TMPDIR": str(tmp_path),  # where the master makes the metrics directory
        }
    )
    command = [
        str(Path(sys.executable).with_name("gunicorn")),
        "-c",
        str(REPO_ROOT / "deploy" / "gunicorn.conf.py"),
        "app.asgi:app_from_environment()",
    ]
    log_path = tmp_path / "gunicorn.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    fresh = httpx.Client(
        base_url=f"http://127.0.0.1:{port}",
        timeout=10,
        limits=httpx.Limits(max_keepalive_connections=0),
    )

    def healthy() -> bool:
        try:
            return fresh.get("/healthz").status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(healthy, "gunicorn to answer", 20.0)
        (directory,) = tmp_path.glob(f"taskgate-metrics-{process.pid}-*")
        asked = 1
        while len(shares(directory, "taskgate_http_requests_total", **HEALTHZ)) < 2:
            assert asked < 400, "every request went to the same worker"
            in_parallel([lambda: fresh.get("/healthz").raise_for_status() for _ in range(20)])
            asked += 20
        assert_healthz_count(fresh, asked)

        # SIGHUP: new workers with the same directory, so the totals carry on.
        before = workers_of(process.pid)
        os.kill(process.pid, signal.SIGHUP)
        wait_until(
            lambda: len(workers_of(process.pid)) == 2 and not before & workers_of(process.pid),
            "gunicorn to start new workers",
            20.0,
        )
        wait_until(healthy, "the new workers to answer", 20.0)
        asked += 1
        assert_healthz_count(fresh, asked)
        assert list(tmp_path.glob("taskgate-metrics-*")) == [directory]

        os.kill(process.pid, signal.SIGTERM)
        assert process.wait(EXIT_TIMEOUT_S) == 0, log_path.read_text()
        assert not directory.exists()
    finally:
        fresh.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
