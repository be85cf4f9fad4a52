"""Acknowledged means durable: SIGKILL a busy `serve --workers 2` and lose no 2xx'd task."""

from __future__ import annotations

import contextlib
import random
import sqlite3
import threading
import time
import traceback
from typing import Any

import httpx

from .harness import ServerFactory

SUBMITTERS = 8
KILL_AFTER_ACKNOWLEDGED = 1500
ACKNOWLEDGE_DEADLINE_S = 30.0
BATCH_SIZES = (2, 3, 5, 8)
TASK_TYPE = "e2e.durable"


class SubmitLedger:
    """What the clients were told: every acknowledged task id with the payload it carries."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.acknowledged: dict[str, Any] = {}
        self.acknowledged_requests = 0
        self.unexpected: list[str] = []
        self.failed_at_kill = 0

    def acknowledge(self, task_id: str, payload: Any) -> None:
        with self._lock:
            if task_id in self.acknowledged:
                self.unexpected.append(f"task id {task_id} acknowledged twice")
            self.acknowledged[task_id] = payload

    def count(self) -> int:
        with self._lock:
            return len(self.acknowledged)

    def note_acknowledged_request(self) -> None:
        with self._lock:
            self.acknowledged_requests += 1

    def note_unexpected(self, what: str) -> None:
        with self._lock:
            self.unexpected.append(what)

    def note_failed_at_kill(self) -> None:
        with self._lock:
            self.failed_at_kill += 1


def _payload(client_index: int, sequence: int, rng: random.Random) -> dict[str, Any]:
    return {
        "marker": f"client{client_index}-seq{sequence}",
        "client": client_index,
        "sequence": sequence,
        "filler": "x" * rng.randint(0, 300),
    }


def _submit_until_killed(
    client_index: int,
    base_url: str,
    headers: dict[str, str],
    ledger: SubmitLedger,
    killing: threading.Event,
) -> None:
    """Submit single tasks and small batches back to back until the server disappears."""
    try:
        _submit_loop(client_index, base_url, headers, ledger, killing)
    except Exception:
        ledger.note_unexpected(f"client {client_index} crashed:\n{traceback.format_exc()}")


def _submit_loop(
    client_index: int,
    base_url: str,
    headers: dict[str, str],
    ledger: SubmitLedger,
    killing: threading.Event,
) -> None:
    rng = random.Random(client_index)
    queue = f"durable-{client_index % 3}"
    sequence = 0
    with httpx.Client(base_url=base_url, timeout=15.0, headers=headers) as http:
        while True:
            batch_size = rng.choice((1, 1, *BATCH_SIZES))
            payloads = [_payload(client_index, sequence + i, rng) for i in range(batch_size)]
            sequence += batch_size
            bodies = [{"type": TASK_TYPE, "payload": payload} for payload in payloads]
            try:
                if batch_size == 1:
                    response = http.post(f"/v1/queues/{queue}/tasks", json=bodies[0])
                else:
                    response = http.post(f"/v1/queues/{queue}/tasks/batch", json={"tasks": bodies})
            except httpx.TransportError as exc:
                if killing.is_set():
                    ledger.note_failed_at_kill()
                else:
                    ledger.note_unexpected(f"client {client_index}: {exc!r} before the kill")
                return
            if not response.is_success:
                if not killing.is_set():
                    ledger.note_unexpected(
                        f"client {client_index}: {response.status_code} {response.text[:300]}"
                    )
                return
            _record(response, payloads, ledger, client_index)


def _record(
    response: httpx.Response, payloads: list[dict[str, Any]], ledger: SubmitLedger, client: int
) -> None:
    """Acknowledge what a 2xx response created: the task, or each created batch item."""
    body = response.json()
    ledger.note_acknowledged_request()
    if len(payloads) == 1:
        if response.status_code == 201:
            ledger.acknowledge(body["id"], payloads[0])
        else:
            ledger.note_unexpected(f"client {client}: single submit got {response.status_code}")
        return
    for result, payload in zip(body["results"], payloads, strict=True):
        if result["status"] == 201:
            ledger.acknowledge(result["task"]["id"], payload)
        else:
            ledger.note_unexpected(f"client {client}: batch item rejected: {result}")


def test_no_acknowledged_task_is_lost_when_the_server_is_sigkilled(
    start_server: ServerFactory,
) -> None:
    server = start_server(workers=2)
    ledger = SubmitLedger()
    killing = threading.Event()
    clients = [
        threading.Thread(
            target=_submit_until_killed,
            args=(index, server.base_url, server.auth_headers(), ledger, killing),
            name=f"submitter-{index}",
        )
        for index in range(SUBMITTERS)
    ]
    for thread in clients:
        thread.start()
    try:
        deadline = time.monotonic() + ACKNOWLEDGE_DEADLINE_S
        while (
            ledger.count() < KILL_AFTER_ACKNOWLEDGED
            and time.monotonic() < deadline
            and any(thread.is_alive() for thread in clients)
        ):
            time.sleep(0.005)
        killing.set()
        server.kill()  # SIGKILL to the gunicorn master and both workers at once
    finally:
        killing.set()
        for thread in clients:
            thread.join(30)
    assert not any(thread.is_alive() for thread in clients), "a submitter hung after the kill"
    assert not ledger.unexpected, "\n".join(ledger.unexpected[:20])
    acknowledged = dict(ledger.acknowledged)
    assert len(acknowledged) >= KILL_AFTER_ACKNOWLEDGED, (
        f"only {len(acknowledged)} tasks acknowledged in {ACKNOWLEDGE_DEADLINE_S} s\n"
        + server.output_tail()
    )

    server.restart()

    missing: list[str] = []
    changed: list[str] = []
    with server.client() as http:
        for task_id, payload in acknowledged.items():
            response = http.get(f"/v1/tasks/{task_id}")
            if response.status_code == 404:
                missing.append(f"{task_id} ({payload['marker']})")
                continue
            assert response.status_code == 200, response.text
            task = response.json()
            if task["payload"] != payload or task["type"] != TASK_TYPE:
                changed.append(f"{task_id}: sent {payload['marker']}, got {task['payload']}")
    print(
        f"\nchecked {len(acknowledged)} acknowledged tasks (from "
        f"{ledger.acknowledged_requests} 2xx submit requests) after SIGKILL + restart; "
        f"{ledger.failed_at_kill} requests were in flight at the kill; "
        f"{len(missing)} missing, {len(changed)} changed"
    )
    assert not missing, f"{len(missing)} acknowledged tasks lost, e.g. {missing[:10]}"
    assert not changed, f"{len(changed)} tasks changed, e.g. {changed[:10]}"

    with contextlib.closing(sqlite3.connect(f"file:{server.database}?mode=ro", uri=True)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
