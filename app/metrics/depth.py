"""The queues' waiting work as gauges, from one store read made for the scrape at hand."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from prometheus_client.core import GaugeMetricFamily, Metric

from app.core.models import QueueDepth

# The `state` label of taskgate_queue_tasks, in output order.
DEPTH_STATES = ("due", "scheduled", "running", "dead")


class QueueDepthCollector:
    """A prometheus_client collector over `depths`, read from the database at `now_ms`.

    Values come from the database, not from a process, so every worker reports the same
    ones and nothing needs adding up across processes.
    """

    def __init__(self, depths: Sequence[QueueDepth], now_ms: int) -> None:
        self._depths = depths
        self._now_ms = now_ms

    def collect(self) -> Iterator[Metric]:
        tasks = GaugeMetricFamily(
            "taskgate_queue_tasks",
            "Tasks in the queue by state: due (queued, due now), scheduled (queued, due "
            "later), running (leased), dead (dead letters).",
            labels=["queue", "state"],
        )
        oldest = GaugeMetricFamily(
            "taskgate_queue_oldest_due_age_seconds",
            "How long the queue's longest-waiting due task has been due (0 when none is due).",
            labels=["queue"],
        )
        paused = GaugeMetricFamily(
            "taskgate_queue_paused", "1 when the queue is paused, else 0.", labels=["queue"]
        )
        for depth in self._depths:
            counts = (depth.due, depth.scheduled, depth.running, depth.dead)
            for state, count in zip(DEPTH_STATES, counts, strict=True):
                tasks.add_metric([depth.queue, state], count)
            oldest.add_metric([depth.queue], depth.oldest_due_age_ms(self._now_ms) / 1000)
            paused.add_metric([depth.queue], 1.0 if depth.paused else 0.0)
        yield tasks
        yield oldest
        yield paused
