"""The scheduler loop: submits the tasks of due cron schedules, once per fire time.

Every server process runs one. Each pass reads the due schedules, plans their fire times
(core/firing.py) and hands them to the store as fire orders, each a compare-and-set on
the schedule's `next_run_at` in the same transaction as the submit: when two processes
plan the same fire time, only the first commit fires it and the other changes nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging

from app.core.clock import Clock, format_ms
from app.core.cron import parse_cron, parse_zone
from app.core.errors import TaskgateError
from app.core.firing import grace_ms, plan_fires
from app.core.models import FireOrder, FireOutcome, Schedule, SubmitOutcome
from app.metrics.instruments import Metrics
from app.service.submission import build_new_task
from app.service.waiters import Waiters, queue_key
from app.store.base import Store

log = logging.getLogger("taskgate.scheduler")

BATCH = 200
# Passes of BATCH schedules per interval at most, so one pass cannot run for ever.
MAX_ROUNDS = 20


def idempotency_key(schedule_id: str, fire_ms: int) -> str:
    """The key of the task for one fire time: the second guard behind the compare-and-set."""
    return f"schedule:{schedule_id}:{fire_ms}"


class Scheduler:
    """Fires due schedules; safe to run in every process at once."""

    def __init__(
        self,
        store: Store,
        waiters: Waiters,
        clock: Clock,
        interval_s: float,
        metrics: Metrics | None = None,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._waiters = waiters
        self._clock = clock
        self.interval_s = interval_s
        self.grace_ms = grace_ms(interval_s)
        # Schedules whose stored cron or zone this host cannot read (a zone missing from
        # its tz database), by (id, revision): logged once, skipped until they change.
        self._unreadable: set[tuple[str, int]] = set()

    def _order(self, schedule: Schedule, now_ms: int) -> FireOrder | None:
        """The fire order of a due schedule (None: it cannot be read on this host)."""
        assert schedule.next_run_at_ms is not None
        try:
            times, _ = parse_cron(schedule.cron, parse_zone(schedule.timezone), now_ms)
        except TaskgateError as exc:
            if (schedule.id, schedule.revision) not in self._unreadable:
                self._unreadable.add((schedule.id, schedule.revision))
                log.error("schedule %r cannot fire on this host: %s", schedule.id, exc.detail)
            return None
        plan = plan_fires(schedule, times, now_ms, self.grace_ms)
        template = json.loads(schedule.task_json)  # the stdlib keeps integers beyond 64 bits
        tasks = tuple(
            build_new_task(
                schedule.queue,
                {
                    **template,
                    "run_at": format_ms(fire_ms),
                    "idempotency_key": idempotency_key(schedule.id, fire_ms),
                },
                None,
                now_ms,
            )
            for fire_ms in plan.fire_times_ms
        )
        return FireOrder(
            schedule_id=schedule.id,
            revision=schedule.revision,
            expected_next_run_at_ms=schedule.next_run_at_ms,
            next_run_at_ms=plan.next_run_at_ms,
            fire_times_ms=plan.fire_times_ms,
            tasks=tasks,
        )

    def _orders(self, due: list[Schedule], now_ms: int) -> list[FireOrder]:
        return [order for order in (self._order(s, now_ms) for s in due) if order is not None]

    async def fire_due_once(self) -> int:
        """Fire every schedule due now; how many tasks were created."""
        created = 0
        for _ in range(MAX_ROUNDS):
            now_ms = self._clock.now_ms()
            due = await self._store.due_schedules(now_ms, BATCH)
            if not due:
                break
            # Off the event loop: after an outage, a catch-up of many schedules plans
            # thousands of fire times (a `run_all` of 1,000 costs about 20 ms).
            orders = await asyncio.to_thread(self._orders, due, now_ms)
            if orders:
                created += self._report(orders, await self._store.fire_schedules(orders, now_ms))
            # Unreadable schedules stay due: do not read them again in this pass.
            if len(due) < BATCH or len(orders) < len(due):
                break
        return created

    def _report(self, orders: list[FireOrder], outcomes: list[FireOutcome]) -> int:
        created = 0
        for order, outcome in zip(orders, outcomes, strict=True):
            if not outcome.fired:
                if outcome.outcomes:
                    log.error("schedule %r failed to fire: %s", order.schedule_id, outcome.outcomes)
                else:
                    # Another process fired it first (or it was changed): nothing was written.
                    log.debug("schedule %r: fired elsewhere", order.schedule_id)
                continue
            queue = order.tasks[0].queue if order.tasks else None
            fresh = 0
            for fire_ms, result in zip(order.fire_times_ms, outcome.outcomes, strict=True):
                if isinstance(result, SubmitOutcome):
                    fresh += int(result.created)
                else:
                    log.error(
                        "schedule %r: the task for %s was refused: %s",
                        order.schedule_id,
                        format_ms(fire_ms),
                        result,
                    )
            if fresh and queue is not None:
                self._waiters.notify(queue_key(queue), count=fresh)
                if self._metrics is not None:
                    self._metrics.tasks_submitted(queue, fresh)
            log.debug("schedule %r fired %d task(s)", order.schedule_id, fresh)
            created += fresh
        return created

    async def run(self) -> None:
        """Loop forever (until cancelled)."""
        while True:
            try:
                await self.fire_due_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("firing schedules failed; trying again next interval")
            await asyncio.sleep(self.interval_s)
