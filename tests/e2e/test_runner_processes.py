"""Two runner processes against a real server: 2,000 mixed tasks all end as expected, no task
runs twice at once, retries follow the backoff; a SIGKILLed runner's task is redelivered."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from .harness import REPO_ROOT, ServerFactory, ServerProcess, clean_env, wait_until

QUEUE = "soak"
RETRY = {"initial_delay_seconds": 0.3, "factor": 2, "max_delay_seconds": 5, "jitter": False}
MIX = {"ok": 1_780, "raise": 100, "retry": 100, "slow": 16, "hang": 4}


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class RunnerProcesses:
    def __init__(self, server: ServerProcess, marks: Path) -> None:
        self.server = server
        self.marks = marks
        self.processes: list[subprocess.Popen[str]] = []

    def start(self, worker_id: str) -> subprocess.Popen[str]:
        # Output goes to a file: an unread pipe would fill up and block the runner.
        with (self.marks.parent / f"{worker_id}.log").open("w") as log:
            process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "runners", "tests.e2e.soak_app:runner"),
                    *("--url", self.server.base_url, "--log-level", "WARNING"),
                    *("--token", self.server.token),
                ],
                cwd=REPO_ROOT,
                env=clean_env({"SOAK_MARKS": str(self.marks), "TASKGATE_WORKER_ID": worker_id}),
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
            )
        self.processes.append(process)
        return process

    def stop_all(self) -> list[int]:
        codes = []
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                process.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()
            codes.append(process.returncode)
        return codes


@pytest.fixture
def runners(start_server_on_backend: ServerFactory, tmp_path: Path) -> Iterator[RunnerProcesses]:
    server = start_server_on_backend(sweep_interval_seconds=0.1)
    marks = tmp_path / "marks"
    marks.mkdir()
    group = RunnerProcesses(server, marks)
    try:
        yield group
    finally:
        group.stop_all()


def submit_mix(http: httpx.Client) -> dict[str, str]:
    """Submit the mix in batches of 1,000; returns task id → kind."""
    specs: list[dict[str, Any]] = []
    for kind, count in MIX.items():
        for n in range(count):
            spec: dict[str, Any] = {
                "type": kind,
                "payload": {"n": n, "key": uuid.uuid4().hex},
                "retry": RETRY,
            }
            if kind == "raise":
                spec["max_attempts"] = 2
            if kind == "slow":
                spec["lease_seconds"] = 1
            if kind == "hang":
                spec["max_attempts"] = 1
            specs.append(spec)
    kinds: dict[str, str] = {}
    for start in range(0, len(specs), 1000):
        batch = specs[start : start + 1000]
        response = http.post(f"/v1/queues/{QUEUE}/tasks/batch", json={"tasks": batch})
        response.raise_for_status()
        for result, spec in zip(response.json()["results"], batch, strict=True):
            assert result["status"] == 201, result
            kinds[result["task"]["id"]] = spec["type"]
    return kinds


def all_tasks(http: httpx.Client) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"queue": QUEUE, "limit": 1000}
        if cursor:
            params["cursor"] = cursor
        page = http.get("/v1/tasks", params=params).json()
        tasks += page["tasks"]
        cursor = page["next_cursor"]
        if cursor is None:
            return tasks


def test_two_runners_finish_a_mixed_load(runners: RunnerProcesses) -> None:
    with runners.server.client(timeout=30) as http:
        kinds = submit_mix(http)
        started = time.monotonic()
        runners.start("runner-a")
        runners.start("runner-b")

        def everything_finished() -> bool:
            counts = http.get(f"/v1/queues/{QUEUE}").json()["counts"]
            return counts["queued"] == 0 and counts["running"] == 0

        wait_until(everything_finished, "all 2,000 tasks to finish", timeout_s=90, interval_s=0.5)
        elapsed = time.monotonic() - started
        tasks = all_tasks(http)
        workers = http.get("/v1/workers").json()["workers"]
    assert runners.stop_all() == [0, 0]

    assert len(tasks) == sum(MIX.values())
    expected = {
        "ok": ("succeeded", 1),
        "raise": ("dead", 2),
        "retry": ("succeeded", 2),
        "slow": ("succeeded", 1),  # outlived a 1 s lease, kept alive by heartbeats
        "hang": ("dead", 1),  # the runner's 3 s task timeout
    }
    outcomes = Counter()
    for task in tasks:
        kind = kinds[task["id"]]
        assert (task["state"], task["attempts"]) == expected[kind], (kind, task)
        outcomes[kind] += 1
        if kind in ("ok", "slow"):
            assert task["result"] == {"n": task["payload"]["n"]}
        if kind == "raise":
            first, second = task["errors"]
            assert first["type"] == "ValueError" and second["type"] == "ValueError"
            # The second attempt started no earlier than the backoff after the first failure.
            assert (ts(second["at"]) - ts(first["at"])).total_seconds() >= RETRY[
                "initial_delay_seconds"
            ]
        if kind == "hang":
            assert task["last_error"]["type"] == "TimeoutError"
    assert outcomes == Counter(MIX)
    # Both runners took work, and no task ever ran twice at the same time.
    assert {w["id"] for w in workers} >= {"runner-a", "runner-b"}
    assert not list(runners.marks.glob("*.double"))
    by_worker = Counter(task["worker_id"] for task in tasks)
    print(
        f"soak: {len(tasks)} tasks finished by 2 runner processes in {elapsed:.1f} s "
        f"(including process start-up): {dict(outcomes)}; last attempt by {dict(by_worker)}"
    )


def test_sigkilled_runner_task_is_redelivered(runners: RunnerProcesses) -> None:
    with runners.server.client() as http:
        created = http.post(
            f"/v1/queues/{QUEUE}/tasks",
            json={
                "type": "slow",
                "payload": {"n": 1, "key": uuid.uuid4().hex, "seconds": 60},
                "lease_seconds": 1,
            },
        ).json()
        first = runners.start("runner-killed")

        def running_on(worker: str, attempts: int) -> bool:
            task = http.get(f"/v1/tasks/{created['id']}").json()
            return (task["state"], task["worker_id"], task["attempts"]) == (
                "running",
                worker,
                attempts,
            )

        wait_until(lambda: running_on("runner-killed", 1), "the first runner to take the task")
        first.kill()
        first.communicate()
        runners.start("runner-second")
        wait_until(
            lambda: running_on("runner-second", 2), "the task to be redelivered", timeout_s=20
        )
        task = http.get(f"/v1/tasks/{created['id']}").json()
    assert task["errors"][0]["type"] == "LeaseExpired"
