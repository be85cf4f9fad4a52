"""Every v1 operation through the blocking `Client`, against a real server process."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from runners import (
    BadRequest,
    Client,
    Priority,
    RetryPolicy,
    Task,
    TaskSpec,
    TaskState,
    WaitTimeout,
)
from tests.e2e.harness import ServerProcess

from .scripted import FAST_RETRIES, ScriptedTransport


def lease_token(task: Task) -> str:
    assert task.lease is not None
    return task.lease.token


def claim_one(client: Client, queue: str, worker_id: str = "sdk-worker") -> Task:
    tasks = client.claim(queue, worker_id)
    assert len(tasks) == 1
    return tasks[0]


def test_submit_with_every_option_round_trips(client: Client, queue: str) -> None:
    run_at = datetime.now(UTC) + timedelta(hours=1)
    task = client.submit(
        queue,
        "report.build",
        {"report_id": 42},
        priority=Priority.HIGH,
        run_at=run_at,
        max_attempts=7,
        retry=RetryPolicy(initial_delay_seconds=2, factor=3, max_delay_seconds=60, jitter=False),
        lease_seconds=120,
        idempotency_key="report-42",
        tags=["reports", "nightly"],
    )
    assert task.queue == queue
    assert task.type == "report.build"
    assert task.payload == {"report_id": 42}
    assert task.priority is Priority.HIGH
    assert task.state is TaskState.QUEUED
    assert task.max_attempts == 7
    assert task.lease_seconds == 120
    assert task.retry == RetryPolicy(2.0, 3.0, 60.0, False)
    assert task.idempotency_key == "report-42"
    assert task.tags == ("reports", "nightly")
    assert task.run_at.tzinfo is UTC
    assert abs(task.run_at - run_at) < timedelta(milliseconds=1)
    assert task.lease is None and not task.finished

    replay = client.submit(
        queue,
        "report.build",
        {"report_id": 42},
        priority="high",
        run_at=run_at,
        max_attempts=7,
        retry=RetryPolicy(2, 3, 60, False),
        lease_seconds=120,
        idempotency_key="report-42",
        tags=["reports", "nightly"],
    )
    assert replay.id == task.id


def test_delay_seconds_makes_the_task_not_due(client: Client, queue: str) -> None:
    task = client.submit(queue, "later", delay_seconds=3600)
    assert task.run_at > task.created_at
    assert client.claim(queue, "sdk-worker") == []
    assert client.get_queue(queue).counts.scheduled == 1


def test_naive_run_at_is_refused_before_sending(client: Client, queue: str) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        client.submit(queue, "t", run_at=datetime(2030, 1, 1))


def test_submit_batch_reports_each_item(client: Client, queue: str) -> None:
    result = client.submit_batch(
        queue,
        [TaskSpec("a", {"n": 1}), TaskSpec("not valid!"), TaskSpec("b", priority="low")],
    )
    assert (result.created, result.existing, result.rejected) == (2, 0, 1)
    assert [item.status for item in result.results] == [201, 422, 201]
    first, rejected, last = result.results
    assert first.task is not None and first.task.payload == {"n": 1}
    assert last.task is not None and last.task.priority is Priority.LOW
    assert rejected.task is None and rejected.error is not None
    assert rejected.error.errors[0].field == "body.tasks[1].type"


def test_submit_batch_sends_json_objects_as_they_are(client: Client, queue: str) -> None:
    result = client.submit_batch(
        queue,
        [
            {"type": "a", "run_at": "2030-01-01T09:00:00+01:00", "idempotency_key": "raw-1"},
            {"type": "b", "colour": "red"},
            TaskSpec("c", idempotency_key="raw-1"),
        ],
    )
    assert [item.status for item in result.results] == [201, 422, 409]
    created = result.results[0].task
    assert created is not None and created.run_at == datetime(2030, 1, 1, 8, tzinfo=UTC)
    refused = result.results[1].error
    assert refused is not None and "colour" in refused.errors[0].message
    # The server compares bodies literally: the object as sent is the one it remembers.
    replay = client.submit_batch(
        queue, [{"idempotency_key": "raw-1", "run_at": "2030-01-01T09:00:00+01:00", "type": "a"}]
    )
    assert replay.existing == 1 and replay.results[0].task == created


def test_get_and_get_with_wait(client: Client, queue: str) -> None:
    task = client.submit(queue, "t", [1, 2])
    assert client.get(task.id) == task
    leased = claim_one(client, queue)
    client.complete(leased.id, lease_token(leased), {"ok": True})
    done = client.get(task.id, wait=1.0)
    assert done.state is TaskState.SUCCEEDED and done.result == {"ok": True}


def test_wait_returns_the_finished_task_or_times_out(client: Client, queue: str) -> None:
    task = client.submit(queue, "t")
    with pytest.raises(WaitTimeout) as caught:
        client.wait(task.id, timeout=0.2)
    assert caught.value.task.id == task.id and caught.value.task.state is TaskState.QUEUED
    client.cancel(task.id)
    assert client.wait(task.id, timeout=5).state is TaskState.CANCELLED


def test_list_tasks_filters_and_pages(client: Client, queue: str) -> None:
    submitted = [
        client.submit(queue, "kind.a" if n % 2 else "kind.b", tags=[f"n{n}"]) for n in range(5)
    ]
    first = client.list_tasks(queue=queue, limit=2)
    assert [t.id for t in first.tasks] == [t.id for t in reversed(submitted)][:2]
    assert first.next_cursor is not None
    second = client.list_tasks(queue=queue, limit=2, cursor=first.next_cursor)
    assert [t.id for t in second.tasks] == [t.id for t in reversed(submitted)][2:4]
    kind_a = client.list_tasks(queue=queue, type="kind.a", state=TaskState.QUEUED)
    assert {t.id for t in kind_a.tasks} == {submitted[1].id, submitted[3].id}
    assert [t.id for t in client.list_tasks(queue=queue, tag="n4").tasks] == [submitted[4].id]

    everything = list(client.iter_tasks(queue=queue, limit=2))
    assert [t.id for t in everything] == [t.id for t in reversed(submitted)]


def test_cancel_a_queued_task(client: Client, queue: str) -> None:
    task = client.submit(queue, "t")
    cancelled = client.cancel(task.id)
    assert cancelled.state is TaskState.CANCELLED and cancelled.finished


def test_claim_heartbeat_complete(client: Client, queue: str) -> None:
    client.submit(queue, "skip.me")
    wanted = [client.submit(queue, "do.me", {"n": n}) for n in range(2)]
    claimed = client.claim(
        queue, "sdk-worker-1", max_tasks=5, wait_seconds=0.5, lease_seconds=30, types=["do.me"]
    )
    assert [t.id for t in claimed] == [t.id for t in wanted]
    task = claimed[0]
    assert task.state is TaskState.RUNNING and task.worker_id == "sdk-worker-1"
    assert task.lease is not None and task.started_at is not None
    assert task.lease.expires_at > task.started_at

    beat = client.heartbeat(task.id, task.lease.token, lease_seconds=90)
    assert beat.task_id == task.id and beat.state is TaskState.RUNNING
    assert not beat.cancel_requested
    assert beat.lease.expires_at > task.lease.expires_at

    client.cancel(task.id)
    assert client.heartbeat(task.id, task.lease.token).cancel_requested

    done = client.complete(claimed[1].id, lease_token(claimed[1]), "r")
    assert done.state is TaskState.SUCCEEDED and done.result == "r"


def test_fail_retries_or_goes_dead_then_redrive_and_purge(client: Client, queue: str) -> None:
    task = client.submit(queue, "flaky", max_attempts=3)
    leased = claim_one(client, queue)
    again = client.fail(
        task.id,
        lease_token(leased),
        message="smtp down",
        error_type="TimeoutError",
        traceback="Traceback ...",
        retry_after_seconds=0,
    )
    assert again.state is TaskState.QUEUED and again.attempts == 1
    assert again.last_error is not None
    assert (again.last_error.type, again.last_error.message) == ("TimeoutError", "smtp down")
    assert again.last_error.traceback == "Traceback ..."

    leased = claim_one(client, queue)
    dead = client.fail(task.id, lease_token(leased), message="no such user", retry=False)
    assert dead.state is TaskState.DEAD and len(dead.errors) == 2

    page = client.list_dead(queue, limit=10)
    assert [t.id for t in page.tasks] == [task.id]
    assert client.redrive(queue, [task.id]) == 1
    assert client.get(task.id).state is TaskState.QUEUED

    leased = claim_one(client, queue)
    client.fail(task.id, lease_token(leased), retry=False)
    assert client.redrive(queue) == 1
    leased = claim_one(client, queue)
    client.fail(task.id, lease_token(leased), retry=False)
    assert client.purge_dead(queue) == 1
    assert client.list_dead(queue).tasks == ()


def test_queues_configure_pause_resume(client: Client, queue: str) -> None:
    client.submit(queue, "t")
    configured = client.configure_queue(
        queue,
        max_attempts=9,
        retry=RetryPolicy(initial_delay_seconds=5, factor=3, max_delay_seconds=600, jitter=False),
        lease_seconds=45,
        retention_seconds=3600,
    )
    assert configured.config.max_attempts == 9
    assert configured.config.retry == RetryPolicy(5.0, 3.0, 600.0, False)
    assert (configured.config.lease_seconds, configured.config.retention_seconds) == (45, 3600)

    default = client.configure_queue(queue, reset=["max_attempts", "lease_seconds"])
    assert default.config.max_attempts != 9 and default.config.lease_seconds != 45
    assert default.config.retention_seconds == 3600

    paused = client.pause(queue, reason="maintenance")
    assert paused.paused and paused.pause_reason == "maintenance"
    assert client.claim(queue, "sdk-worker") == []
    assert not client.resume(queue).paused

    one = client.get_queue(queue)
    assert one.name == queue and one.counts.due == 1 and one.counts.queued == 1
    assert queue in {q.name for q in client.list_queues()}


def test_workers_and_system(client: Client, queue: str) -> None:
    client.submit(queue, "t")
    claim_one(client, queue, worker_id="sdk-worker-listed")
    worker = next(w for w in client.list_workers() if w.id == "sdk-worker-listed")
    assert worker.alive and queue in worker.queues and worker.in_flight == 1
    assert [lease.queue for lease in worker.leases] == [queue]
    assert worker.last_seen_at.tzinfo is UTC
    assert client.health() == "ok"
    assert client.ready() == "ok"


def test_token_is_sent_as_bearer_and_close_is_idempotent(server: ServerProcess) -> None:
    transport = ScriptedTransport()
    sdk = Client(server.base_url, token="tok-123", retries=FAST_RETRIES, transport=transport)
    assert sdk.health() == "ok"
    sdk.close()
    sdk.close()
    assert transport.requests[0].headers["authorization"] == "Bearer tok-123"
    with pytest.raises(RuntimeError, match="closed"):
        sdk.health()


def test_invalid_input_is_a_bad_request_with_field_errors(client: Client, queue: str) -> None:
    with pytest.raises(BadRequest) as caught:
        client.submit(queue, "t", priority="urgent")
    error = caught.value
    assert error.status == 422 and error.type == "urn:taskgate:problem:invalid-input"
    assert [e.field for e in error.errors] == ["body.priority"]
    assert error.request_id
