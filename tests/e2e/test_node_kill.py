"""A node dies mid-run and nothing is lost: three nodes on one database behind nginx, one
SIGKILLed (master and workers at once) while 20,000 pull tasks, 500 push tasks and an
every-second schedule are in flight, then restarted.

Afterwards every acknowledged task has succeeded, none is left queued or running, no result
was accepted twice (the runners' journals show at most one 200 per task, and stale leases
refused with 409), every push task reached the receiver and succeeded once, and the
schedule fired once per second without a gap. A runner is also stopped (SIGSTOP) across
the kill for longer than a lease, so that its completions arrive with superseded leases: it
is stopped while it holds tasks of its own queue (`held`, whose handler takes 5 s), so that
it always has some.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from .cluster import (
    CLUSTER_CONF,
    Backend,
    Cluster,
    postgres_backend,
    running_cluster,
    sqlite_backend,
)
from .harness import REPO_ROOT, clean_env, wait_until
from .nginx_support import DEPLOY_CONF
from .receiver_support import Receiver, run_receiver

PULL_TASKS = 20_000
PUSH_TASKS = 500
RUNNERS = 4
SUBMIT_BATCH = 500
BACKLOG = 2_000
PUSH_ANSWER_SECONDS = 0.3
KILL_AT_SUCCEEDED = int(PULL_TASKS * 0.3)
KILLED_NODE = 1  # node2: not the one that migrated the database
DOWN_SECONDS = 3.0
LEASE_SECONDS = 4
# The stalled runner sleeps through its leases, their expiry (sweeps every 0.25 s) and the
# redelivery of its tasks to the other runners.
STALL_SECONDS = LEASE_SECONDS + 3.0
# Only the stalled runner works the `held` queue; it is stopped while running these. Their
# handler sleeps long enough to cover the wait for the victim to be delivering, and less
# than the stop: when the runner resumes, their completions go out and are refused.
HELD_TASKS = 5
HOLD_MS = 5000
# A push delivery's lease is its webhook timeout + 30 s (app/dispatch/webhooks.py): the
# killed node's deliveries come back only then.
WEBHOOK_TIMEOUT_SECONDS = 3
SCHEDULE_ID = "tick"
FINISH_TIMEOUT_S = 120.0
NODE_SETTINGS: dict[str, Any] = {
    "webhook_allow": "127.0.0.1/32",
    "sweep_interval_seconds": 0.25,
}
FAST_RETRY = {"initial_delay_seconds": 0.1, "factor": 1, "max_delay_seconds": 0.1, "jitter": False}
QUEUE_SETTINGS = {"lease_seconds": LEASE_SECONDS, "max_attempts": 20, "retry": FAST_RETRY}


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "postgres":
        # A fresh database on the session's throwaway server; the nodes get its URL as
        # TASKGATE_DATABASE_URL and nothing else in this test changes.
        return postgres_backend(tmp_path, request.getfixturevalue("postgres_url"))
    return sqlite_backend(tmp_path)


# -- the processes around the cluster --------------------------------------------------


class Runners:
    """Runner subprocesses (tests/e2e/node_kill_app.py), each journaling to its own file."""

    def __init__(self, cluster: Cluster, work_dir: Path) -> None:
        self.cluster = cluster
        self.work_dir = work_dir
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def journal_path(self, worker_id: str) -> Path:
        return self.work_dir / f"{worker_id}.jsonl"

    def start(self, worker_id: str, queues: str = "work,ticks") -> None:
        with (self.work_dir / f"{worker_id}.out").open("wb") as output:
            self.processes[worker_id] = subprocess.Popen(
                [
                    *(sys.executable, "-m", "tests.e2e.node_kill_app"),
                    *("--url", self.cluster.url, "--ca", str(self.cluster.ca_pem)),
                    *("--log", str(self.journal_path(worker_id)), "--worker-id", worker_id),
                    *("--queues", queues),
                ],
                cwd=REPO_ROOT,
                env=clean_env({"TASKGATE_TOKEN": self.cluster.token(("tasks:work",))}),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )

    def send_signal(self, worker_id: str, signum: signal.Signals) -> None:
        self.processes[worker_id].send_signal(signum)

    def stop_all(self) -> dict[str, int]:
        """SIGTERM (and SIGCONT, in case one is stopped), then the exit codes."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.send_signal(signal.SIGTERM)
        codes = {}
        for worker_id, process in self.processes.items():
            try:
                codes[worker_id] = process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                codes[worker_id] = process.wait()
        return codes

    def journal(self) -> list[dict[str, Any]]:
        records = []
        for worker_id in self.processes:
            path = self.journal_path(worker_id)
            if path.exists():
                records += [json.loads(line) for line in path.read_text().splitlines() if line]
        return records

    def claimed(self, worker_id: str, queue: str) -> int:
        """How many tasks of `queue` the runner has journaled as claimed so far."""
        path = self.journal_path(worker_id)
        if not path.exists():
            return 0
        records = (json.loads(line) for line in path.read_text().splitlines() if line)
        return sum(record["event"] == "claimed" and record["queue"] == queue for record in records)

    def output(self) -> str:
        parts = []
        for worker_id in self.processes:
            text = (self.work_dir / f"{worker_id}.out").read_text(errors="replace")
            parts.append(f"--- {worker_id} ---\n{text[-3000:]}")
        return "\n".join(parts)


@pytest.fixture
def runners_for() -> Iterator[list[Runners]]:
    """Holds the test's Runners so that they are stopped whatever happens."""
    made: list[Runners] = []
    try:
        yield made
    finally:
        for group in made:
            group.stop_all()


@dataclass
class Producer:
    """Submits the pull tasks in batches and the push tasks alongside, in proportion, so
    that both streams last the whole run: a batch waits while more than BACKLOG pull tasks
    are due. Every item has an idempotency key, and a batch whose answer was lost (502 from
    nginx, a cut connection) is sent again until it is acknowledged."""

    cluster: Cluster
    pull: dict[int, str] = field(default_factory=dict)
    """Pull task number -> the id its 201 (or idempotent 200) gave."""
    push: dict[int, str] = field(default_factory=dict)
    repeated_batches: int = 0
    replayed_items: int = 0
    failure: str | None = None

    def run(self) -> None:
        batches = PULL_TASKS // SUBMIT_BATCH
        try:
            with self.cluster.client(timeout=30) as http:
                for batch in range(batches):
                    self._wait_for_room(http)
                    first = batch * SUBMIT_BATCH
                    pull = range(first, first + SUBMIT_BATCH)
                    self._submit(http, "work", self.pull, pull, pull_task)
                    push = range(PUSH_TASKS * batch // batches, PUSH_TASKS * (batch + 1) // batches)
                    self._submit(http, "hooks", self.push, push, push_task)
        except Exception as exc:  # reported by the test thread
            self.failure = repr(exc)

    def _wait_for_room(self, http: httpx.Client) -> None:
        while True:
            response = self._send(http, "GET", "/v1/queues/work")
            if response.json()["counts"]["due"] <= BACKLOG:
                return
            time.sleep(0.1)

    def _submit(
        self,
        http: httpx.Client,
        queue: str,
        acknowledged: dict[int, str],
        numbers: range,
        make: Callable[[int], dict[str, Any]],
    ) -> None:
        tasks = [make(n) for n in numbers]
        response = self._send(http, "POST", f"/v1/queues/{queue}/tasks/batch", {"tasks": tasks})
        for n, item in zip(numbers, response.json()["results"], strict=True):
            assert item["status"] in (200, 201), item
            self.replayed_items += item["status"] == 200
            acknowledged[n] = item["task"]["id"]

    def _send(self, http: httpx.Client, method: str, path: str, body: Any = None) -> httpx.Response:
        """The 200 answer, sending again after a lost one (each item has its own key)."""
        deadline = time.monotonic() + 60
        while True:
            try:
                response = http.request(method, path, json=body)
            except httpx.TransportError:
                response = None
            if response is not None and response.status_code == 200:
                return response
            if response is not None and response.status_code not in (502, 503, 504):
                raise AssertionError(f"{method} {path}: {response.status_code} {response.text}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{method} {path}: no answer within 60 s")
            self.repeated_batches += method == "POST"
            time.sleep(0.2)


def pull_task(n: int) -> dict[str, Any]:
    """Pull task number n: its handler sleeps 5-24 ms, then returns {"n": n}."""
    return {"type": "work", "payload": {"n": n, "ms": 5 + n % 20}, "idempotency_key": f"work-{n}"}


def push_task(n: int) -> dict[str, Any]:
    """Push task number n: the receiver answers its delivery after PUSH_ANSWER_SECONDS."""
    return {
        "type": "scripted",
        "payload": {"n": n, "script": [f"sleep:{PUSH_ANSWER_SECONDS}"]},
        "idempotency_key": f"hook-{n}",
    }


# -- reading the outcome ----------------------------------------------------------------


def wait_for(predicate: Callable[[], bool], describe: Callable[[], str], timeout_s: float) -> None:
    """Poll `predicate` every 0.5 s; at the deadline fail with `describe()` (the state then)."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {describe()}")
        time.sleep(0.5)


def all_tasks(http: httpx.Client, queue: str) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"queue": queue, "limit": 1000}
        if cursor:
            params["cursor"] = cursor
        response = http.get("/v1/tasks", params=params)
        response.raise_for_status()
        page = response.json()
        tasks += page["tasks"]
        cursor = page["next_cursor"]
        if cursor is None:
            return tasks


def counts(http: httpx.Client, queue: str) -> dict[str, int]:
    response = http.get(f"/v1/queues/{queue}")
    response.raise_for_status()
    result: dict[str, int] = response.json()["counts"]
    return result


def drained(http: httpx.Client, queue: str, expected: int | None = None) -> bool:
    now = counts(http, queue)
    done = now["queued"] == 0 and now["running"] == 0
    return done and (expected is None or now["succeeded"] == expected)


@dataclass
class Completions:
    """What the runners' journals say about the completes of one task."""

    accepted: list[dict[str, Any]] = field(default_factory=list)  # 200
    refused: list[dict[str, Any]] = field(default_factory=list)  # 409
    unanswered: list[dict[str, Any]] = field(default_factory=list)  # 502, cut connection


def completions_by_task(journal: list[dict[str, Any]]) -> dict[str, Completions]:
    by_task: dict[str, Completions] = defaultdict(Completions)
    for record in journal:
        if record["event"] != "complete":
            continue
        outcome = by_task[record["task"]]
        if record["status"] == 200:
            outcome.accepted.append(record)
        elif record["status"] == 409:
            outcome.refused.append(record)
        else:
            outcome.unanswered.append(record)
    return by_task


def check_results_accepted_once(
    tasks: list[dict[str, Any]], journal: list[dict[str, Any]]
) -> tuple[int, int]:
    """Each task's result was accepted once, from its last attempt's lease; returns the
    refused completions (superseded lease, repeat of a recorded one)."""
    leases = {
        (record["task"], record["attempt"]): record["lease"]
        for record in journal
        if record["event"] == "claimed"
    }
    by_task = completions_by_task(journal)
    superseded = repeats = 0
    for task in tasks:
        outcome = by_task.get(task["id"], Completions())
        final_lease = leases.get((task["id"], task["attempts"]))
        assert len(outcome.accepted) <= 1, f"two results accepted for {task['id']}: {outcome}"
        if outcome.accepted:
            assert outcome.accepted[0]["lease"] == final_lease, (task, outcome)
        else:
            # Recorded by a complete whose answer was lost (the node died after its commit).
            # The SDK retries a 502: a first try that landed answers its repeat with 409.
            tries = outcome.unanswered + outcome.refused
            assert any(record["lease"] == final_lease for record in tries), (
                f"task {task['id']} succeeded, but no runner saw its last attempt's result "
                f"accepted or sent one that went unanswered: {task}, {outcome}"
            )
        for record in outcome.refused:
            assert record["error"] == "urn:taskgate:problem:lease-lost", record
            if record["lease"] == final_lease:
                repeats += 1
            else:
                superseded += 1
    return superseded, repeats


def explain_redeliveries(
    tasks: list[dict[str, Any]], journal: list[dict[str, Any]], stalled: str
) -> Counter[str]:
    """Why each attempt but the last of a redelivered task ended, from the journals."""
    claims = {
        (record["task"], record["attempt"]): record
        for record in journal
        if record["event"] == "claimed"
    }
    unanswered = {
        (record["task"], record["lease"])
        for record in journal
        if record["event"] == "complete" and record["status"] not in (200, 409)
    }
    reasons: Counter[str] = Counter()
    for task in tasks:
        for attempt in range(1, task["attempts"]):
            claim = claims.get((task["id"], attempt))
            if claim is None:
                reasons["claim answer lost"] += 1
            elif claim["worker"] == stalled:
                reasons["runner stalled"] += 1
            elif (task["id"], claim["lease"]) in unanswered:
                reasons["complete answer lost"] += 1
            else:
                reasons["other"] += 1
    return reasons


def delivering_nodes(cluster: Cluster, http: httpx.Client) -> set[str]:
    """The node runs ("node2#1") delivering a push task right now."""
    response = http.get("/v1/tasks", params={"queue": "hooks", "state": "running"})
    response.raise_for_status()
    return {node_of_dispatcher(cluster, task["worker_id"]) for task in response.json()["tasks"]}


def node_of_dispatcher(cluster: Cluster, worker_id: str) -> str:
    """The node run ("node2#1") whose process delivered a push task (`dispatcher@host:pid`)."""
    assert worker_id.startswith("dispatcher@"), worker_id
    pid = int(worker_id.rsplit(":", 1)[1])
    return cluster.node_run_of_pid(pid) or f"unknown pid {pid}"


# -- the test ---------------------------------------------------------------------------


def test_killing_a_node_loses_nothing(
    backend: Backend, tmp_path: Path, runners_for: list[Runners]
) -> None:
    started = time.monotonic()
    with (
        run_receiver(tmp_path) as receiver,
        running_cluster(tmp_path, backend, **NODE_SETTINGS) as cluster,
        cluster.client() as http,
    ):
        set_up_queues(http, receiver)
        runners = Runners(cluster, tmp_path)
        runners_for.append(runners)
        worker_ids = [f"runner-{n}" for n in range(1, RUNNERS + 1)]
        stalled = worker_ids[0]
        runners.start(stalled, queues="work,ticks,held")
        for worker_id in worker_ids[1:]:
            runners.start(worker_id)
        wait_until(
            lambda: {w["id"] for w in http.get("/v1/workers").json()["workers"]} >= set(worker_ids),
            "the four runners to claim",
            timeout_s=30,
        )
        producer = Producer(cluster)
        producing = threading.Thread(target=producer.run, name="producer", daemon=True)
        load_started = time.monotonic()
        producing.start()

        # The kill: once 30 % of the pull tasks have succeeded, at a moment when the victim
        # is delivering a push task.
        victim = cluster.nodes[KILLED_NODE]
        killed_run = f"{victim.name}#{victim.runs}"
        wait_until(
            lambda: counts(http, "work")["succeeded"] >= KILL_AT_SUCCEEDED,
            f"{KILL_AT_SUCCEEDED} pull tasks to succeed before the kill",
            timeout_s=90,
            interval_s=0.2,
        )
        cluster.note_pids()
        holds = [{"type": "hold", "payload": {"n": n, "ms": HOLD_MS}} for n in range(HELD_TASKS)]
        response = http.post("/v1/queues/held/tasks/batch", json={"tasks": holds})
        assert response.status_code == 200, response.text
        wait_until(
            lambda: runners.claimed(stalled, "held") >= HELD_TASKS,
            f"{stalled} to run the held tasks",
            timeout_s=30,
            interval_s=0.02,
        )
        held_since = time.monotonic()
        wait_until(
            lambda: killed_run in delivering_nodes(cluster, http),
            f"{victim.name} to be delivering a push task",
            timeout_s=30,
            interval_s=0.05,
        )
        assert time.monotonic() - held_since < HOLD_MS / 1000, "the held tasks ended first"
        kill_offset = time.monotonic() - load_started
        killed_at = time.time()
        runners.send_signal(stalled, signal.SIGSTOP)
        victim.kill()
        time.sleep(DOWN_SECONDS)
        victim.restart()
        restarted_at_line = cluster.access_log_lines()
        cluster.note_pids()
        time.sleep(max(0.0, STALL_SECONDS - (time.time() - killed_at)))
        runners.send_signal(stalled, signal.SIGCONT)

        producing.join(FINISH_TIMEOUT_S)
        assert not producing.is_alive(), "the producer did not finish"
        assert producer.failure is None, producer.failure
        assert (len(producer.pull), len(producer.push)) == (PULL_TASKS, PUSH_TASKS)

        wait_for(
            lambda: (
                drained(http, "work", PULL_TASKS)
                and drained(http, "hooks", PUSH_TASKS)
                and drained(http, "held", HELD_TASKS)
            ),
            lambda: (
                f"all pull and push tasks to succeed (pull: {counts(http, 'work')}, "
                f"push: {counts(http, 'hooks')})\n{cluster.output()}\n{runners.output()}"
            ),
            timeout_s=FINISH_TIMEOUT_S,
        )
        load_seconds = time.monotonic() - load_started
        paused = http.patch(f"/v1/schedules/{SCHEDULE_ID}", json={"paused": True})
        assert paused.status_code == 200, paused.text
        wait_until(lambda: drained(http, "ticks"), "the schedule's tasks to finish", 30, 0.25)
        cluster.note_pids()
        codes = runners.stop_all()
        assert codes == dict.fromkeys(worker_ids, 0), f"{codes}\n{runners.output()}"

        pull = all_tasks(http, "work")
        push = all_tasks(http, "hooks")
        ticks = all_tasks(http, "ticks")
        held_tasks = all_tasks(http, "held")
        queues = {name: counts(http, name) for name in ("work", "hooks", "ticks", "held")}
        upstreams = cluster.upstream_counts()
        upstreams_after_restart = cluster.upstream_counts(since_line=restarted_at_line)
        nginx_log = cluster.nginx_access_log()
        node_logs = cluster.node_logs()
    journal = runners.journal()

    # No node failed a request (502s are nginx's, for requests cut by the kill) or logged
    # an error; no runner crashed.
    statuses = Counter(re.findall(r'(?m)^[^"]*"[^"]*" (\d{3}) ', nginx_log))
    assert not {status for status in statuses if status in ("500", "503", "504")}, statuses
    for name, text in node_logs.items():
        assert not re.search(r"Traceback| (ERROR|CRITICAL) ", text), f"{name}:\n{text[-5000:]}"
    assert "Traceback" not in runners.output(), runners.output()

    # Nothing left behind: no queue holds a queued, running or dead task.
    for name, now in queues.items():
        assert now["queued"] == now["running"] == now["dead"] == now["cancelled"] == 0, (
            name,
            now,
        )

    # Every acknowledged pull task, once (the repeated batches replayed, made nothing new).
    assert sorted(task["id"] for task in pull) == sorted(producer.pull.values())
    by_number = {task["payload"]["n"]: task for task in pull}
    assert len(by_number) == PULL_TASKS
    for n, task_id in producer.pull.items():
        task = by_number[n]
        assert (task["id"], task["state"], task["result"]) == (task_id, "succeeded", {"n": n})
        assert task["idempotency_key"] == f"work-{n}"
    ran = Counter(record["n"] for record in journal if record["event"] == "ran" and "n" in record)
    assert set(ran) == set(range(PULL_TASKS)), "a pull task succeeded without its handler running"

    # Results accepted once; stale leases refused.
    superseded, repeats = check_results_accepted_once([*pull, *ticks, *held_tasks], journal)
    fails = [record for record in journal if record["event"] == "fail"]
    assert not fails, f"the handlers never fail, yet: {fails[:5]}"
    assert all(task["attempts"] > 1 for task in held_tasks), held_tasks
    assert superseded >= HELD_TASKS, "the stalled runner's completions should have been refused"
    redelivered = [task for task in [*pull, *ticks, *held_tasks] if task["attempts"] > 1]
    for task in redelivered:
        assert {error["type"] for error in task["errors"]} == {"LeaseExpired"}, task
    reasons = explain_redeliveries(redelivered, journal, stalled)
    cut_by_kill = len(re.findall(r'(?m)^.*" 502 .*$', nginx_log))

    # Push: every task delivered, signed, succeeded once; repeats only after the kill.
    deliveries = receiver.deliveries()
    assert all(entry["verified"] for entry in deliveries)
    delivered: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in deliveries:
        delivered[entry["webhook_id"]].append(entry)
    assert set(delivered) == set(producer.push.values()) == {task["id"] for task in push}
    push_redelivered = 0
    delivered_by: Counter[str] = Counter()
    for task in push:
        assert task["state"] == "succeeded", task
        assert task["result"] == {"handled": task["id"], "attempt": task["attempts"]}, task
        delivered_by[node_of_dispatcher(cluster, task["worker_id"])] += 1
        entries = sorted(delivered[task["id"]], key=lambda entry: entry["received_at"])
        if len(entries) > 1 or task["attempts"] > 1:
            push_redelivered += 1
            assert {error["type"] for error in task["errors"]} == {"LeaseExpired"}, task
            assert node_of_dispatcher(cluster, task["worker_id"]) != killed_run, task
            assert all(entry["received_at"] > killed_at for entry in entries[1:]), entries
    assert len({run.split("#")[0] for run in delivered_by}) >= 2, delivered_by

    # The schedule: one task per fire time, every second from the first to the last. The
    # fire time is in the idempotency key (`run_at` moves when a lost lease is retried).
    prefix = f"schedule:{SCHEDULE_ID}:"
    keys = [task["idempotency_key"] for task in ticks]
    assert all(key.startswith(prefix) for key in keys), keys
    fire_times = sorted(int(key.removeprefix(prefix)) for key in keys)
    assert len(set(fire_times)) == len(fire_times), "a fire time was submitted twice"
    missing = sorted(set(range(fire_times[0], fire_times[-1] + 1000, 1000)) - set(fire_times))
    assert not missing, f"fire times without a task (run_all catches up): {missing}"
    assert all(task["state"] == "succeeded" for task in ticks)

    # Traffic went to every node, and to the restarted one again after its restart.
    assert all(upstreams[node.name] > 0 for node in cluster.nodes), upstreams
    assert upstreams_after_restart[victim.name] > 0, upstreams_after_restart
    print(
        f"\nnode-kill [{backend.name}]: {PULL_TASKS} pull tasks + {PUSH_TASKS} push + "
        f"{len(ticks)} scheduled + {HELD_TASKS} held, all succeeded; "
        f"{cluster.nodes[KILLED_NODE].name} SIGKILLed at +{kill_offset:.1f} s of the load "
        f"(after {KILL_AT_SUCCEEDED} succeeded), back after {DOWN_SECONDS:g} s, cutting "
        f"{cut_by_kill} requests (502 from nginx); redeliveries (attempts > 1): "
        f"{len(redelivered)} pull/tick/held ({dict(sorted(reasons.items()))}), "
        f"{push_redelivered} push; refused completes (409): {superseded} superseded lease, "
        f"{repeats} repeats; producer batches repeated: {producer.repeated_batches} "
        f"({producer.replayed_items} items replayed); push deliveries: {len(deliveries)} "
        f"(final delivery by node run: {dict(sorted(delivered_by.items()))}); schedule fires: "
        f"{len(fire_times)} (none missing, none twice); requests per node: "
        f"{dict(sorted(upstreams.items()))} ({upstreams_after_restart[victim.name]} to "
        f"{victim.name} after its restart); load {load_seconds:.1f} s, "
        f"test {time.monotonic() - started:.1f} s"
    )


def set_up_queues(http: httpx.Client, receiver: Receiver) -> None:
    """Short leases on the pull queues (`held` too); the push queue; the every-second
    schedule."""
    for queue in ("work", "ticks", "held"):
        response = http.patch(f"/v1/queues/{queue}", json=QUEUE_SETTINGS)
        assert response.status_code == 200, response.text
    response = http.patch(
        "/v1/queues/hooks",
        json={
            "delivery": "push",
            "max_attempts": 20,
            "retry": FAST_RETRY,
            "webhook": {
                "url": receiver.url,
                "signing_secrets": [receiver.secret],
                "timeout_seconds": WEBHOOK_TIMEOUT_SECONDS,
                "max_concurrency": 8,
            },
        },
    )
    assert response.status_code == 200, response.text
    response = http.post(
        "/v1/schedules",
        json={
            "id": SCHEDULE_ID,
            "cron": "* * * * * *",
            "queue": "ticks",
            "task": {"type": "tick", "lease_seconds": LEASE_SECONDS},
            "missed": "run_all",
        },
    )
    assert response.status_code == 201, response.text


def server_blocks(conf: Path, upstream: str) -> list[str]:
    """The directives of a site's `server` blocks, comments and spacing dropped, with the
    upstream's name, the access log and the failover directives left out."""
    text = re.sub(r"(?m)#.*$", "", conf.read_text())
    text = text[text.index("server {") :].replace(f"http://{upstream};", "http://UPSTREAM;")
    lines = (" ".join(line.split()) for line in text.splitlines())
    return [
        line
        for line in lines
        if line and not line.startswith(("access_log ", "proxy_next_upstream"))
    ]


def test_the_cluster_site_keeps_the_single_node_locations_and_headers() -> None:
    assert server_blocks(CLUSTER_CONF, "taskgate_cluster") == server_blocks(DEPLOY_CONF, "taskgate")
