"""`Metrics`: taskgate's counters and histograms, one object per app, handed to the edge
middleware, the services, the sweeper and the dispatcher; it also renders a scrape."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Generic, TypeVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from app.core.models import QueueDepth, Task, TaskState
from app.metrics.depth import QueueDepthCollector
from app.metrics.multiprocess import write_values_to

# The route label of a request that matched no route (never the raw path: unbounded).
UNMATCHED_ROUTE = "unmatched"
# Any method outside these is counted as "other", so clients cannot mint label values.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "other"

# Seconds. Requests run from well under a millisecond to a 25 s long-poll (60 s at most).
# fmt: off
HTTP_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
)
# fmt: on
CLAIM_WAIT_BUCKETS = (0.005, 0.05, 0.25, 1, 2.5, 5, 10, 15, 20, 25, 30, 60)
# A webhook may take up to its timeout, at most 300 s.
DELIVERY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

M = TypeVar("M", Counter, Histogram)


class _ByQueue(Generic[M]):
    """A metric's children by queue name, made on first use: `labels()` takes a lock and
    builds tuples, which the hot paths need not pay for every time."""

    __slots__ = ("_children", "_metric")

    def __init__(self, metric: M) -> None:
        self._metric: M = metric
        self._children: dict[str, M] = {}

    def __call__(self, queue: str) -> M:
        child = self._children.get(queue)
        if child is None:
            child = self._children[queue] = self._metric.labels(queue)
        return child


class Metrics:
    """Everything taskgate counts, and the scrape.

    Build it with `in_process()` (one server process, and tests: each app has its own
    registry, so apps in one test process never share counts) or `multiprocess(dir)`
    (a gunicorn worker: values live in files that every worker's scrape adds up). The
    recording methods are called on the event loop; prometheus_client locks its values.
    """

    def __init__(self, registry: CollectorRegistry | None, source: Collector) -> None:
        """Use `in_process()` or `multiprocess()`. `registry` holds the metrics (None:
        they are not registered anywhere, their values are in files); `source` is what a
        scrape reads them from."""
        self._source = source
        self._http_requests = Counter(
            "taskgate_http_requests_total",
            "HTTP requests answered, by route template, method and status (0: no answer).",
            ["route", "method", "status"],
            registry=registry,
        )
        self._http_duration = Histogram(
            "taskgate_http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer, long-polls included.",
            ["route", "method"],
            registry=registry,
            buckets=HTTP_BUCKETS,
        )
        # (route, method, status) → (counter child, histogram child).
        self._http_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._submitted = _ByQueue(
            _per_queue_counter(
                registry, "tasks_submitted", "Tasks created (not idempotent replays)."
            )
        )
        self._claimed = _ByQueue(
            _per_queue_counter(
                registry,
                "tasks_claimed",
                "Leases granted: tasks claimed by workers or for webhook delivery.",
            )
        )
        self._succeeded = _ByQueue(
            _per_queue_counter(registry, "tasks_succeeded", "Tasks completed with a result.")
        )
        self._failed = _ByQueue(
            _per_queue_counter(
                registry,
                "tasks_failed",
                "Attempts ended by a reported failure (a worker's fail, a failed delivery).",
            )
        )
        self._retried = _ByQueue(
            _per_queue_counter(
                registry,
                "tasks_retried",
                "Failed or expired attempts after which the task was queued again.",
            )
        )
        self._dead = _ByQueue(
            _per_queue_counter(registry, "tasks_dead", "Tasks moved to the dead letters.")
        )
        self._cancelled = _ByQueue(
            _per_queue_counter(registry, "tasks_cancelled", "Tasks that ended cancelled.")
        )
        self._lease_expiries = _ByQueue(
            _per_queue_counter(
                registry,
                "lease_expiries",
                "Attempts ended by the sweeper because their lease ran out.",
            )
        )
        self._claim_wait = Histogram(
            "taskgate_claim_wait_seconds",
            "How long a claim request waited (long-polled) before it returned, by whether "
            "it got tasks.",
            ["queue", "outcome"],
            registry=registry,
            buckets=CLAIM_WAIT_BUCKETS,
        )
        self._claim_wait_children: dict[tuple[str, bool], Histogram] = {}
        self._deliveries = Counter(
            "taskgate_webhook_deliveries_total",
            "Webhook deliveries by outcome: delivered (2xx), failed (retried or not), refused "
            "(the queue was paused).",
            ["queue", "outcome"],
            registry=registry,
        )
        self._delivery_duration = _ByQueue(
            Histogram(
                "taskgate_webhook_delivery_duration_seconds",
                "Time a webhook delivery took, from the target check to the end of the answer.",
                ["queue"],
                registry=registry,
                buckets=DELIVERY_BUCKETS,
            )
        )

    @classmethod
    def in_process(cls) -> Metrics:
        """Metrics in this process's memory, with its process and runtime metrics."""
        registry = CollectorRegistry()
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
        return cls(registry, registry)

    @classmethod
    def multiprocess(cls, directory: Path) -> Metrics:
        """Metrics of one gunicorn worker, written to `directory`; a scrape adds up every
        worker's files. No process metrics: they would describe one worker only."""
        write_values_to(directory)
        source = MultiProcessCollector(None, path=str(directory))  # type: ignore[no-untyped-call]
        return cls(None, source)

    # -- recording ------------------------------------------------------------------

    def request_done(self, route: str, method: str, status: int, seconds: float) -> None:
        """One HTTP request answered (`route` is a path template or UNMATCHED_ROUTE)."""
        if method not in KNOWN_METHODS:
            method = OTHER_METHOD
        key = (route, method, status)
        children = self._http_children.get(key)
        if children is None:
            children = self._http_children[key] = (
                self._http_requests.labels(route, method, str(status)),
                self._http_duration.labels(route, method),
            )
        children[0].inc()
        children[1].observe(seconds)

    def tasks_submitted(self, queue: str, count: int) -> None:
        self._submitted(queue).inc(count)

    def tasks_claimed(self, queue: str, count: int) -> None:
        self._claimed(queue).inc(count)

    def claim_returned(self, queue: str, claimed: int, waited_s: float) -> None:
        """A claim request is answered with `claimed` tasks after waiting `waited_s`."""
        if claimed:
            self._claimed(queue).inc(claimed)
        key = (queue, claimed > 0)
        child = self._claim_wait_children.get(key)
        if child is None:
            child = self._claim_wait_children[key] = self._claim_wait.labels(
                queue, "tasks" if claimed else "empty"
            )
        child.observe(waited_s)

    def task_completed(self, task: Task) -> None:
        """A complete was recorded; `task` as it is now."""
        if task.state is TaskState.succeeded:
            self._succeeded(task.queue).inc()

    def task_failed(self, task: Task) -> None:
        """A reported failure ended an attempt; `task` as it is now."""
        self._failed(task.queue).inc()
        self._attempt_ended(task)

    def lease_expired(self, task: Task) -> None:
        """The sweeper ended an attempt whose lease ran out; `task` as it is now."""
        self._lease_expiries(task.queue).inc()
        self._attempt_ended(task)

    def task_cancel_requested(self, task: Task) -> None:
        """A cancel was accepted; counts only when it ended the task at once."""
        if task.state is TaskState.cancelled:
            self._cancelled(task.queue).inc()

    def _attempt_ended(self, task: Task) -> None:
        if task.state is TaskState.queued:
            self._retried(task.queue).inc()
        elif task.state is TaskState.dead:
            self._dead(task.queue).inc()
        elif task.state is TaskState.cancelled:
            self._cancelled(task.queue).inc()

    def delivery_done(self, queue: str, outcome: str, seconds: float) -> None:
        """One webhook delivery ended with `outcome` (delivered, failed or refused)."""
        self._deliveries.labels(queue, outcome).inc()
        self._delivery_duration(queue).observe(seconds)

    # -- scraping -------------------------------------------------------------------

    def render(self, depths: Sequence[QueueDepth], now_ms: int) -> bytes:
        """The Prometheus text exposition: these metrics (of every worker, in multiprocess
        mode) and the queue gauges of `depths`, read from the database at `now_ms`."""
        scrape = CollectorRegistry(auto_describe=False)
        scrape.register(self._source)
        scrape.register(QueueDepthCollector(depths, now_ms))
        data: bytes = generate_latest(scrape)
        return data


def _per_queue_counter(
    registry: CollectorRegistry | None, name: str, documentation: str
) -> Counter:
    return Counter(f"taskgate_{name}_total", documentation, ["queue"], registry=registry)
