"""Stateful property test: random lifecycles through the services over a real database
(a SQLite file; a PostgreSQL database of the session's throwaway server).

A hypothesis state machine submits, claims, heartbeats, completes, fails, cancels, expires
leases, pauses/resumes queues and redrives dead letters, and after every step compares
the database with a small in-memory model of what the contract promises.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import tempfile
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pytest
from hypothesis import Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from app.api.problems import describe_error
from app.core.clock import FixedClock
from app.core.errors import Conflict, IdempotencyMismatch, LeaseLost, NotFound
from app.core.lifecycle import can_transition
from app.core.models import (
    TERMINAL_STATES,
    ErrorReport,
    Priority,
    QueueDepth,
    QueueInfo,
    RetryPolicy,
    SubmitOutcome,
    Task,
    TaskFilter,
    TaskState,
    WorkerInfo,
)
from app.main import build_store
from app.metrics.instruments import Metrics
from app.service.queues import QueueService
from app.service.sweeper import Sweeper
from app.service.tasks import TaskLimits, TaskService
from app.service.waiters import Waiters
from app.settings import load_settings
from app.store.migrate import migrate_sqlite
from tests.postgres_server import PostgresServer
from tests.scrape import Scrape

T = TypeVar("T")

QUEUES = ("alpha", "beta")
TYPES = ("a", "b")
WORKERS = ("w1", "w2")
# Submits stop while this many tasks are unfinished, so that steps go to their lifecycles.
MAX_LIVE_TASKS = 6

DEFAULT_MAX_ATTEMPTS = 2
DEFAULT_LEASE_SECONDS = 10
DEFAULT_RETRY = RetryPolicy(initial_delay_seconds=1.0, factor=2.0, max_delay_seconds=8.0)


@dataclass
class ModelTask:
    """What the contract says a task looks like, tracked independently of the store."""

    seq: int
    id: str
    queue: str
    type: str
    priority: Priority
    max_attempts: int
    lease_seconds: int
    retry: RetryPolicy | None  # the task's patch over the defaults; None: the queue's
    run_at_ms: int
    state: TaskState = TaskState.queued
    attempts: int = 0
    lease_token: str | None = None
    lease_expires_at_ms: int | None = None
    worker_id: str | None = None
    cancel_requested: bool = False
    stale_tokens: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TaskSpec:
    """What a producer asks for; None leaves a field out of the submit body."""

    task_type: str
    priority: Priority
    delay_s: float | None
    max_attempts: int | None
    lease_seconds: int | None
    retry: dict[str, Any] | None  # a retry object; fields left out come from the defaults

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.task_type,
            "payload": {"kind": self.task_type},
            "priority": self.priority.name,
        }
        if self.delay_s is not None:
            body["delay_seconds"] = self.delay_s
        if self.max_attempts is not None:
            body["max_attempts"] = self.max_attempts
        if self.lease_seconds is not None:
            body["lease_seconds"] = self.lease_seconds
        if self.retry is not None:
            body["retry"] = self.retry
        return body

    def effective_retry(self) -> RetryPolicy | None:
        return None if self.retry is None else replace(DEFAULT_RETRY, **self.retry)


@dataclass(frozen=True)
class Snapshot:
    """What the store shows after a step."""

    tasks: list[Task]  # each model task read by id
    listed: list[Task]  # every task the store lists
    queues: list[QueueInfo]
    workers: list[WorkerInfo]
    depths: list[QueueDepth]  # what /metrics reports of each queue
    metrics: Scrape  # the services' counters


def backoff_ceiling_ms(policy: RetryPolicy, failed_attempts: int) -> int:
    """The longest retry delay the policy allows after `failed_attempts` failures."""
    raw = policy.initial_delay_seconds * policy.factor ** max(failed_attempts - 1, 0)
    return round(min(policy.max_delay_seconds, raw) * 1000)


def claim_order(task: ModelTask) -> tuple[int, int, int]:
    """High before normal before low; FIFO by due time, then by submission."""
    return (int(task.priority), task.run_at_ms, task.seq)


# Index into a candidate list (taken modulo its length): prints and shrinks better than
# data.draw, and stays deterministic because candidates are listed in submission order.
picks = st.integers(min_value=0, max_value=1_000)
task_retry_patches = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {},
        optional={
            "initial_delay_seconds": st.sampled_from([0.0, 0.5, 3.0]),
            "factor": st.sampled_from([1.0, 3.0]),
            "max_delay_seconds": st.sampled_from([1.0, 20.0]),
            "jitter": st.booleans(),
        },
    ),
)
task_specs = st.builds(
    TaskSpec,
    task_type=st.sampled_from(TYPES),
    priority=st.sampled_from(Priority),
    delay_s=st.sampled_from([None, None, 0, 0.5, 5, 30]),
    max_attempts=st.one_of(st.none(), st.integers(min_value=1, max_value=3)),
    lease_seconds=st.sampled_from([None, 5, 20]),
    retry=task_retry_patches,
)
clock_steps_ms = st.one_of(
    st.integers(min_value=0, max_value=2_000), st.sampled_from([5_000, 10_000, 30_000, 90_000])
)


class TaskLifecycleMachine(RuleBasedStateMachine):
    # Where each run's database is: a SQLite file (None), or a new database on this server.
    postgres: ClassVar[PostgresServer | None] = None

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.directory = Path(tempfile.mkdtemp(prefix="taskgate-stateful-"))
        database = self.directory / "taskgate.db"
        self.postgres_database: str | None = None
        database_url = ""
        if self.postgres is None:
            migrate_sqlite(database)
        else:
            self.postgres_database = self.postgres.create_database()
            database_url = self.postgres.url(self.postgres_database)
        app_settings = load_settings(
            environ={},
            overrides={
                "database": str(database),
                "database_url": database_url,
                "database_pool_size": 2,
                "default_max_attempts": DEFAULT_MAX_ATTEMPTS,
                "default_lease_seconds": DEFAULT_LEASE_SECONDS,
                "default_retry_initial_seconds": DEFAULT_RETRY.initial_delay_seconds,
                "default_retry_factor": DEFAULT_RETRY.factor,
                "default_retry_max_seconds": DEFAULT_RETRY.max_delay_seconds,
                "default_retry_jitter": DEFAULT_RETRY.jitter,
            },
        )
        # A seeded generator (seeded again in `start`).
        self.rng = random.Random(0)
        self.store = build_store(app_settings, rng=self.rng)
        self.clock = FixedClock()
        waiters = Waiters()
        self.metrics = Metrics.in_process()
        self.tasks = TaskService(self.store, waiters, self.clock, TaskLimits(), self.metrics)
        self.queues = QueueService(self.store, waiters, self.clock)
        self.sweeper = Sweeper(
            self.store, waiters, self.clock, app_settings.worker_retention_seconds, self.metrics
        )
        self.run(self.store.open())

        self.model: dict[str, ModelTask] = {}
        self.paused: dict[str, bool] = {}
        self.idempotency: dict[tuple[str, str], tuple[str, str]] = {}
        self.issued_tokens: list[str] = []
        self.seen_states: dict[str, TaskState] = {}
        self.redriven_now: set[str] = set()
        self.submitted = 0
        # Every task id a queue ever had (purged dead letters included), for the counters.
        self.ever_in_queue: dict[str, set[str]] = {queue: set() for queue in QUEUES}

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)

    def teardown(self) -> None:
        try:
            self.run(self.store.close())
            self.run(self.loop.shutdown_default_executor())
        finally:
            self.loop.close()
            shutil.rmtree(self.directory, ignore_errors=True)
            if self.postgres is not None and self.postgres_database is not None:
                self.postgres.drop_database(self.postgres_database)

    # -- model helpers ----------------------------------------------------------------

    def in_order(self, *states: TaskState) -> list[ModelTask]:
        return sorted(
            (task for task in self.model.values() if not states or task.state in states),
            key=lambda task: task.seq,
        )

    def room_for_more(self) -> bool:
        return len(self.in_order(TaskState.queued, TaskState.running)) < MAX_LIVE_TASKS

    def waiting_on_time(self) -> bool:
        """Whether moving the clock changes anything: a delayed task or a running lease."""
        now = self.now()
        return any(
            task.state is TaskState.running
            or (task.state is TaskState.queued and task.run_at_ms > now)
            for task in self.model.values()
        )

    def next_seq(self) -> int:
        self.submitted += 1
        return self.submitted

    def now(self) -> int:
        return self.clock.now_ms()

    def read(self, task_id: str) -> Task:
        return self.run(self.tasks.get(task_id))

    def check_submitted(self, task: Task, expected: ModelTask) -> None:
        assert task.state is TaskState.queued
        assert task.attempts == 0
        assert task.queue == expected.queue
        assert task.priority is expected.priority
        assert task.max_attempts == expected.max_attempts
        assert task.lease_seconds == expected.lease_seconds
        assert task.run_at_ms == expected.run_at_ms
        assert task.lease_token is None

    def end_attempt(
        self, expected: ModelTask, actual: Task, retry: bool, retry_after_ms: int | None
    ) -> None:
        """Apply a failed or expired attempt to the model, checking the store's outcome."""
        now = self.now()
        assert expected.lease_token is not None
        expected.stale_tokens.append(expected.lease_token)
        expected.lease_token = expected.lease_expires_at_ms = None
        if expected.cancel_requested:
            expected.state = TaskState.cancelled
        elif not retry or expected.attempts >= expected.max_attempts:
            expected.state = TaskState.dead
        else:
            expected.state = TaskState.queued
            if retry_after_ms is not None:
                assert actual.run_at_ms == now + retry_after_ms
            else:
                policy = expected.retry or DEFAULT_RETRY
                ceiling = backoff_ceiling_ms(policy, expected.attempts)
                if policy.jitter:
                    assert now <= actual.run_at_ms <= now + ceiling
                else:
                    assert actual.run_at_ms == now + ceiling
            expected.run_at_ms = actual.run_at_ms
        assert actual.state is expected.state, (actual.state, expected.state)
        assert actual.lease_token is None

    def wrong_token_for(self, expected: ModelTask) -> str | None:
        """A token that is not the task's lease: its own latest stale one, else another's."""
        if expected.stale_tokens:
            return expected.stale_tokens[-1]
        others = [token for token in self.issued_tokens if token != expected.lease_token]
        return others[-1] if others else None

    def worker_call(
        self, operation: str, task_id: str, token: str
    ) -> Callable[[], Coroutine[Any, Any, Task]]:
        """A late worker's heartbeat, complete, or fail (with or without retry)."""
        error = ErrorReport(type="Late", message="a worker whose lease is gone")
        return {
            "heartbeat": lambda: self.tasks.heartbeat(task_id, token, None),
            "complete": lambda: self.tasks.complete(task_id, token, '"late"'),
            "fail_retry": lambda: self.tasks.fail(task_id, token, error, True, None),
            "fail_dead": lambda: self.tasks.fail(task_id, token, error, False, 0),
        }[operation]

    def check_refused(
        self, task_id: str, call: Callable[[], Coroutine[Any, Any, Any]], error: type[Exception]
    ) -> None:
        """The call is refused with a 409 and changes nothing."""
        before = self.read(task_id)
        with pytest.raises(error) as refused:
            self.run(call())
        assert isinstance(refused.value, Conflict)
        assert describe_error(refused.value)[0] == 409
        assert self.read(task_id) == before, f"a refused call changed {task_id}"

    def check_wrong_token_refused(self, expected: ModelTask, operation: str) -> None:
        token = self.wrong_token_for(expected)
        if token is not None:
            self.check_refused(
                expected.id, self.worker_call(operation, expected.id, token), LeaseLost
            )

    # -- rules: setup -----------------------------------------------------------------

    @initialize(
        seed=st.integers(min_value=0, max_value=2**32 - 1),
        queue=st.sampled_from(QUEUES),
        specs=st.lists(task_specs, max_size=4),
    )
    def start(self, seed: int, queue: str, specs: list[TaskSpec]) -> None:
        """Seed the store's backoff jitter; start with a few tasks (whatever rules run)."""
        self.rng.seed(seed)
        if specs:
            self.submit(queue, specs)

    # -- rules: producers -------------------------------------------------------------

    @precondition(lambda self: self.room_for_more())
    @rule(queue=st.sampled_from(QUEUES), specs=st.lists(task_specs, min_size=1, max_size=3))
    def submit(self, queue: str, specs: list[TaskSpec]) -> None:
        """One task through `submit`, several through `submit_many` (one commit)."""
        bodies = [spec.body() for spec in specs]
        if len(bodies) == 1:
            created = [self.run(self.tasks.submit(queue, bodies[0], None))]
        else:
            outcomes = self.run(self.tasks.submit_many(queue, bodies))
            assert all(isinstance(outcome, SubmitOutcome) for outcome in outcomes), outcomes
            created = [outcome for outcome in outcomes if isinstance(outcome, SubmitOutcome)]
        for spec, outcome in zip(specs, created, strict=True):
            assert outcome.created
            assert outcome.task.id not in self.model
            expected = ModelTask(
                seq=self.next_seq(),
                id=outcome.task.id,
                queue=queue,
                type=spec.task_type,
                priority=spec.priority,
                max_attempts=spec.max_attempts or DEFAULT_MAX_ATTEMPTS,
                lease_seconds=spec.lease_seconds or DEFAULT_LEASE_SECONDS,
                retry=spec.effective_retry(),
                run_at_ms=self.now() + round((spec.delay_s or 0) * 1000),
            )
            self.check_submitted(outcome.task, expected)
            self.model[expected.id] = expected
        self.paused.setdefault(queue, False)

    @precondition(lambda self: self.room_for_more())
    @rule(
        queue=st.sampled_from(QUEUES),
        key=st.sampled_from(["k1", "k2"]),
        task_type=st.sampled_from(TYPES),
    )
    def submit_with_idempotency_key(self, queue: str, key: str, task_type: str) -> None:
        body = {"type": task_type, "idempotency_key": key}
        first = self.idempotency.get((queue, key))
        if first is not None and first[0] in self.model:
            first_id, first_type = first
            if first_type != task_type:
                with pytest.raises(IdempotencyMismatch) as refused:
                    self.run(self.tasks.submit(queue, body, None))
                assert describe_error(refused.value)[0] == 409
                return
            outcome = self.run(self.tasks.submit(queue, body, None))
            assert not outcome.created
            assert outcome.task.id == first_id
            assert outcome.task.state is self.model[first_id].state  # as it is now
            return
        # New key, or the first task was purged: a new task.
        outcome = self.run(self.tasks.submit(queue, body, None))
        assert outcome.created
        expected = ModelTask(
            seq=self.next_seq(),
            id=outcome.task.id,
            queue=queue,
            type=task_type,
            priority=Priority.normal,
            max_attempts=DEFAULT_MAX_ATTEMPTS,
            lease_seconds=DEFAULT_LEASE_SECONDS,
            retry=None,
            run_at_ms=self.now(),
        )
        self.check_submitted(outcome.task, expected)
        self.model[expected.id] = expected
        self.idempotency[(queue, key)] = (expected.id, task_type)
        self.paused.setdefault(queue, False)

    @precondition(lambda self: self.in_order(TaskState.queued, TaskState.running))
    @rule(pick=picks)
    def cancel(self, pick: int) -> None:
        # Half the time a running task (if any): its cancel is a request, honoured later.
        running = self.in_order(TaskState.running) if pick % 2 == 0 else []
        candidates = running or self.in_order(TaskState.queued, TaskState.running)
        expected = candidates[pick // 2 % len(candidates)]
        task = self.run(self.tasks.cancel(expected.id))
        if expected.state is TaskState.queued:
            expected.state = TaskState.cancelled
        else:
            expected.cancel_requested = True  # again: 200, still running
        assert task.state is expected.state
        assert task.cancel_requested == expected.cancel_requested

    @precondition(lambda self: self.in_order(*TERMINAL_STATES))
    @rule(
        pick=picks,
        operation=st.sampled_from(["cancel", "redrive", "heartbeat", "complete", "fail_retry"]),
    )
    def poke_finished_task(self, pick: int, operation: str) -> None:
        """A finished task refuses everything but the redrive of a dead one; nothing changes."""
        candidates = self.in_order(*TERMINAL_STATES)
        expected = candidates[pick % len(candidates)]
        if operation == "redrive" and expected.state is not TaskState.dead:
            before = self.read(expected.id)
            assert self.run(self.queues.redrive(expected.queue, [expected.id])) == 0
            assert self.read(expected.id) == before
        elif operation in ("cancel", "redrive"):
            self.check_refused(expected.id, lambda: self.tasks.cancel(expected.id), Conflict)
        else:
            token = (expected.stale_tokens or ["lt_" + "0" * 32])[-1]
            self.check_refused(
                expected.id, self.worker_call(operation, expected.id, token), LeaseLost
            )

    # -- rules: workers ---------------------------------------------------------------

    @precondition(lambda self: self.model)
    @rule(
        pick=picks,
        any_queue=st.booleans(),
        worker=st.sampled_from(WORKERS),
        max_tasks=st.integers(min_value=1, max_value=3),
        lease_seconds=st.sampled_from([None, 3, 15]),
        types=st.sampled_from([None, None, ("a",), ("b",), ("a", "b")]),
    )
    def claim(
        self,
        pick: int,
        any_queue: bool,
        worker: str,
        max_tasks: int,
        lease_seconds: int | None,
        types: tuple[str, ...] | None,
    ) -> None:
        # Mostly a queue that has queued tasks, so that claims often find work.
        queued = self.in_order(TaskState.queued)
        if any_queue or not queued:
            queue = QUEUES[pick % len(QUEUES)]
        else:
            queue = queued[pick % len(queued)].queue
        now = self.now()
        due = sorted(
            (
                task
                for task in self.in_order(TaskState.queued)
                if task.queue == queue
                and task.run_at_ms <= now
                and (types is None or task.type in types)
            ),
            key=claim_order,
        )
        expected = [] if self.paused.get(queue, False) else due[:max_tasks]
        claimed = self.run(self.tasks.claim(queue, worker, max_tasks, 0.0, lease_seconds, types))
        for task in claimed:
            assert task.run_at_ms <= now, f"claimed {task.id} before it is due"
            assert task.queue == queue
            assert not self.paused.get(queue, False), f"claimed {task.id} from a paused queue"
        assert [task.id for task in claimed] == [task.id for task in expected], (
            "claim order: expected "
            f"{[(t.id, t.priority.name, t.run_at_ms) for t in expected]}, got "
            f"{[(t.id, t.priority.name, t.run_at_ms) for t in claimed]}"
        )
        for task, model_task in zip(claimed, expected, strict=True):
            model_task.state = TaskState.running
            model_task.attempts += 1
            model_task.worker_id = worker
            assert task.state is TaskState.running
            assert task.attempts == model_task.attempts <= model_task.max_attempts
            assert task.worker_id == worker
            assert task.lease_token is not None
            assert task.lease_token not in self.issued_tokens, "a lease token was reused"
            # The claim's lease length applies to this lease only.
            lease_ms = 1000 * (lease_seconds or model_task.lease_seconds)
            assert task.lease_expires_at_ms == now + lease_ms
            self.issued_tokens.append(task.lease_token)
            model_task.lease_token = task.lease_token
            model_task.lease_expires_at_ms = task.lease_expires_at_ms

    @precondition(lambda self: self.in_order(TaskState.running))
    @rule(pick=picks, lease_seconds=st.sampled_from([None, 5, 30]))
    def heartbeat(self, pick: int, lease_seconds: int | None) -> None:
        candidates = self.in_order(TaskState.running)
        expected = candidates[pick % len(candidates)]
        assert expected.lease_token is not None
        self.check_wrong_token_refused(expected, "heartbeat")
        task = self.run(self.tasks.heartbeat(expected.id, expected.lease_token, lease_seconds))
        expected.lease_expires_at_ms = self.now() + 1000 * (lease_seconds or expected.lease_seconds)
        assert task.state is TaskState.running
        assert task.lease_token == expected.lease_token
        assert task.lease_expires_at_ms == expected.lease_expires_at_ms

    @precondition(lambda self: self.in_order(TaskState.running))
    @rule(pick=picks)
    def complete(self, pick: int) -> None:
        candidates = self.in_order(TaskState.running)
        expected = candidates[pick % len(candidates)]
        assert expected.lease_token is not None
        self.check_wrong_token_refused(expected, "complete")
        task = self.run(self.tasks.complete(expected.id, expected.lease_token, '{"ok":true}'))
        expected.stale_tokens.append(expected.lease_token)
        expected.lease_token = expected.lease_expires_at_ms = None
        expected.state = TaskState.succeeded
        assert task.state is TaskState.succeeded
        assert task.result_json == '{"ok":true}'
        assert task.lease_token is None

    @precondition(lambda self: self.in_order(TaskState.running))
    @rule(
        pick=picks,
        retry=st.booleans(),
        retry_after_s=st.sampled_from([None, None, 0, 2.5, 40]),
    )
    def fail(self, pick: int, retry: bool, retry_after_s: float | None) -> None:
        candidates = self.in_order(TaskState.running)
        expected = candidates[pick % len(candidates)]
        assert expected.lease_token is not None
        self.check_wrong_token_refused(expected, "fail_retry" if retry else "fail_dead")
        error = ErrorReport(type="Boom", message="handler failed")
        task = self.run(
            self.tasks.fail(expected.id, expected.lease_token, error, retry, retry_after_s)
        )
        retry_after_ms = None if retry_after_s is None else round(retry_after_s * 1000)
        self.end_attempt(expected, task, retry, retry_after_ms)

    @precondition(lambda self: self.issued_tokens)
    @rule(
        pick=picks,
        token_pick=picks,
        operation=st.sampled_from(["heartbeat", "complete", "fail_retry", "fail_dead"]),
    )
    def use_stale_token(self, pick: int, token_pick: int, operation: str) -> None:
        """Any token but the task's current one is refused (409) and changes nothing."""
        # Mostly a running task: there a wrong token is the one that could do harm.
        candidates = (self.in_order(TaskState.running) if pick % 4 else []) or self.in_order()
        if not candidates:
            return
        expected = candidates[pick // 4 % len(candidates)]
        stale = [token for token in self.issued_tokens if token != expected.lease_token]
        if stale:
            token = stale[token_pick % len(stale)]
            self.check_refused(
                expected.id, self.worker_call(operation, expected.id, token), LeaseLost
            )

    # -- rules: time and the sweeper ----------------------------------------------------

    @precondition(lambda self: self.waiting_on_time())
    @rule(step_ms=clock_steps_ms)
    def advance_clock(self, step_ms: int) -> None:
        self.clock.current_ms += step_ms

    @precondition(lambda self: self.in_order(TaskState.running))
    @rule()
    def sweep(self) -> None:
        now = self.now()
        lapsed = [
            task
            for task in self.in_order(TaskState.running)
            if task.lease_expires_at_ms is not None and task.lease_expires_at_ms <= now
        ]
        expired = self.run(self.sweeper.expire_leases_once())
        assert expired == len(lapsed)
        for expected in lapsed:
            self.end_attempt(expected, self.read(expected.id), retry=True, retry_after_ms=None)

    @precondition(lambda self: self.in_order(TaskState.running))
    @rule(pick=picks, offset_ms=st.sampled_from([-1, 0, 1]))
    def sweep_at_lease_end(self, pick: int, offset_ms: int) -> None:
        """Move the clock to just around one lease's end, then sweep."""
        candidates = self.in_order(TaskState.running)
        expected = candidates[pick % len(candidates)]
        assert expected.lease_expires_at_ms is not None
        self.clock.current_ms = max(self.now(), expected.lease_expires_at_ms + offset_ms)
        self.sweep()

    # -- rules: queues ----------------------------------------------------------------

    @precondition(lambda self: self.model)
    @rule(queue=st.sampled_from(QUEUES), paused=st.booleans())
    def pause_or_resume(self, queue: str, paused: bool) -> None:
        if paused:
            info = self.run(self.queues.pause(queue, "maintenance"))
        else:
            info = self.run(self.queues.resume(queue))
        assert info.paused is paused
        self.paused[queue] = paused

    @precondition(lambda self: self.in_order(TaskState.dead))
    @rule(
        pick=picks,
        action=st.sampled_from(["redrive_all", "redrive_one", "redrive_elsewhere", "purge"]),
    )
    def dead_letters(self, pick: int, action: str) -> None:
        """Redrive a queue's dead tasks (all, or by id) or purge them.

        `redrive_elsewhere` names a dead task on the other queue: nothing moves.
        """
        dead = self.in_order(TaskState.dead)
        target = dead[pick % len(dead)]
        queue = target.queue
        if action == "purge":
            doomed = [task for task in dead if task.queue == queue]
            assert self.run(self.queues.purge_dead(queue)) == len(doomed)
            for expected in doomed:
                del self.model[expected.id]
                with pytest.raises(NotFound):
                    self.read(expected.id)
            return
        task_ids: list[str] | None = None
        if action != "redrive_all":
            task_ids = [target.id, "01NOSUCHTASK0000000000000"]
        if action == "redrive_elsewhere":
            queue = next(name for name in QUEUES if name != target.queue)
        chosen = [
            task
            for task in dead
            if task.queue == queue and (task_ids is None or task.id in task_ids)
        ]
        moved = self.run(self.queues.redrive(queue, task_ids))
        assert moved == len(chosen)
        for expected in chosen:
            expected.state = TaskState.queued
            expected.attempts = 0
            expected.run_at_ms = self.now()
            expected.cancel_requested = False
            self.redriven_now.add(expected.id)

    # -- invariants -------------------------------------------------------------------

    @invariant()
    def store_matches_model(self) -> None:
        """Tasks, queue stats and worker leases, all read at once after every step."""
        snapshot = self.run(self.read_snapshot())
        self.check_tasks(snapshot)
        self.check_queues(snapshot)
        self.check_depths(snapshot)
        self.check_counters(snapshot)
        self.check_worker_leases(snapshot)

    async def read_snapshot(self) -> Snapshot:
        by_id, (listed, cursor), queues, workers, depths = await asyncio.gather(
            asyncio.gather(*(self.tasks.get(task_id) for task_id in self.model)),
            self.tasks.list_page(TaskFilter(limit=1_000)),
            self.queues.list_all(),
            self.queues.workers(),
            self.store.queue_depths(self.now()),
        )
        assert cursor is None
        metrics = Scrape(self.metrics.render([], self.now()).decode())
        return Snapshot(list(by_id), listed, queues, workers, depths, metrics)

    def check_tasks(self, snapshot: Snapshot) -> None:
        """No task lost or invented; each one as the model says; only allowed transitions."""
        listed = {task.id for task in snapshot.listed}
        assert listed == set(self.model), "tasks appeared or were lost"
        for task in snapshot.tasks:
            expected = self.model[task.id]
            assert task.state is expected.state, (task.id, task.state, expected.state)
            assert task.attempts == expected.attempts, (task.id, task.attempts)
            assert task.attempts <= task.max_attempts == expected.max_attempts
            assert task.queue == expected.queue
            assert task.priority is expected.priority
            assert task.lease_seconds == expected.lease_seconds
            assert task.retry == expected.retry
            assert task.cancel_requested == expected.cancel_requested
            if task.state is TaskState.running:
                assert task.lease_token == expected.lease_token
                assert task.lease_expires_at_ms == expected.lease_expires_at_ms
                assert task.worker_id == expected.worker_id
            else:
                assert task.lease_token is None
                assert task.lease_expires_at_ms is None
            if task.state is TaskState.queued:
                assert task.run_at_ms == expected.run_at_ms
            self.check_transition(task)
        self.redriven_now.clear()

    def check_transition(self, task: Task) -> None:
        """Only the state machine's edges; terminal states are left only by a redrive."""
        previous = self.seen_states.get(task.id)
        self.seen_states[task.id] = task.state
        if previous is None or previous is task.state:
            return
        assert can_transition(previous, task.state), (task.id, previous, task.state)
        if previous in TERMINAL_STATES:
            assert previous is TaskState.dead and task.id in self.redriven_now, (
                f"{task.id} left terminal state {previous} for {task.state} without a redrive"
            )

    def check_queues(self, snapshot: Snapshot) -> None:
        """Pause flags and live counts per queue."""
        now = self.now()
        infos = {info.name: info for info in snapshot.queues}
        assert set(infos) == set(self.paused)
        for name, info in infos.items():
            assert info.paused == self.paused[name]
            mine = [task for task in self.model.values() if task.queue == name]

            def count(state: TaskState, tasks: list[ModelTask] = mine) -> int:
                return sum(task.state is state for task in tasks)

            due = [t.run_at_ms for t in mine if t.state is TaskState.queued and t.run_at_ms <= now]
            assert info.counts.due == len(due)
            assert info.oldest_due_age_ms == (now - min(due) if due else None)
            assert info.counts.queued == count(TaskState.queued)
            assert info.counts.running == count(TaskState.running)
            assert info.counts.succeeded == count(TaskState.succeeded)
            assert info.counts.dead == count(TaskState.dead)
            assert info.counts.cancelled == count(TaskState.cancelled)

    def check_depths(self, snapshot: Snapshot) -> None:
        """The metrics' queue read: due, scheduled, running, dead, the oldest due, paused."""
        now = self.now()
        depths = {depth.queue: depth for depth in snapshot.depths}
        assert set(depths) == set(self.paused)
        for name, depth in depths.items():
            mine = [task for task in self.model.values() if task.queue == name]
            queued = [task.run_at_ms for task in mine if task.state is TaskState.queued]
            due = [run_at for run_at in queued if run_at <= now]
            assert depth.paused == self.paused[name]
            assert depth.due == len(due)
            assert depth.scheduled == len(queued) - len(due)
            assert depth.running == sum(task.state is TaskState.running for task in mine)
            assert depth.dead == sum(task.state is TaskState.dead for task in mine)
            assert depth.earliest_run_at_ms == (min(queued) if queued else None)
            assert depth.oldest_due_age_ms(now) == (now - min(due) if due else 0)

    def check_counters(self, snapshot: Snapshot) -> None:
        """Tasks created, and those that reached a state they never leave, were counted
        once each (succeeded and cancelled tasks are neither redriven nor purged here)."""
        for task in self.model.values():
            self.ever_in_queue[task.queue].add(task.id)
        for queue, ever in self.ever_in_queue.items():
            mine = [task for task in self.model.values() if task.queue == queue]
            counted = snapshot.metrics.value
            assert counted("taskgate_tasks_submitted_total", queue=queue) == len(ever)
            assert counted("taskgate_tasks_succeeded_total", queue=queue) == sum(
                task.state is TaskState.succeeded for task in mine
            )
            assert counted("taskgate_tasks_cancelled_total", queue=queue) == sum(
                task.state is TaskState.cancelled for task in mine
            )

    def check_worker_leases(self, snapshot: Snapshot) -> None:
        """The registry lists each running task's one lease, under the worker holding it."""
        leases = {
            (worker.id, lease.task_id, lease.queue, lease.expires_at_ms)
            for worker in snapshot.workers
            for lease in worker.leases
        }
        assert leases == {
            (task.worker_id, task.id, task.queue, task.lease_expires_at_ms)
            for task in self.in_order(TaskState.running)
        }


# Without the explain phase: it traces every line while shrinking, which makes each run of
# the machine (migrations parse SQL in Python) several times slower, turning a half-minute
# shrink into five minutes. A pass takes seconds; the timeout leaves room for a shrink.
@pytest.mark.timeout(600)
def test_task_lifecycle_matches_model(request: pytest.FixtureRequest, backend: str) -> None:
    machine = TaskLifecycleMachine
    if backend == "postgres":
        server = request.getfixturevalue("postgres_server")
        machine = type("PostgresLifecycleMachine", (TaskLifecycleMachine,), {"postgres": server})
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=50,
            stateful_step_count=30,
            deadline=None,
            phases=[phase for phase in Phase if phase is not Phase.explain],
        ),
    )
