"""Schedule use-cases: create, read, list, change and delete cron schedules."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any, TypeVar

from app.core.clock import Clock
from app.core.cron import parse_cron, parse_zone
from app.core.errors import Conflict, InvalidInput, NotFound
from app.core.jsontext import dump_json
from app.core.models import MissedPolicy, Schedule
from app.store.base import Store

T = TypeVar("T")

DEFAULT_TIMEZONE = "UTC"
DEFAULT_MISSED = MissedPolicy.run_once
DEFAULT_MAX_CATCH_UP = 100

# Optional template fields that stay absent unless given (the queue's defaults apply).
_OPTIONAL_TASK_FIELDS = ("max_attempts", "retry", "lease_seconds")

# A change that meets another change of the same schedule is read and applied again.
_ATTEMPTS = 3

# Raises Forbidden when the caller may not use the queue (the API's token check).
QueueCheck = Callable[[str], None]


def _allow_any(queue: str) -> None:
    return None


async def _retrying(attempt: Callable[[], Awaitable[T]]) -> T:
    """Run `attempt`; when it meets a concurrent change (Conflict), read and try again."""
    for _ in range(_ATTEMPTS - 1):
        try:
            return await attempt()
        except Conflict:
            continue
    return await attempt()


def task_template_json(task: Mapping[str, Any]) -> str:
    """A validated ScheduleTask as stored: defaults filled in, unset options left out."""
    template: dict[str, Any] = {
        "type": task["type"],
        "payload": task.get("payload"),
        "priority": task.get("priority", "normal"),
        "tags": list(task.get("tags", ())),
    }
    template.update({key: task[key] for key in _OPTIONAL_TASK_FIELDS if key in task})
    return dump_json(template).decode()


class ScheduleService:
    """Cron schedules over a Store; the Scheduler loop fires them."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def _first_run(self, cron: str, timezone: str, paused: bool, now_ms: int) -> int | None:
        """The next fire time after now (None while paused).

        Raises:
            InvalidInput: an unknown time zone, or an expression that is unreadable or
                never fires.
        """
        try:
            zone = parse_zone(timezone)
        except InvalidInput as bad_zone:
            # Name a bad expression in the same answer, rather than one field per attempt.
            try:
                parse_cron(cron, parse_zone(DEFAULT_TIMEZONE), now_ms)
            except InvalidInput as bad_cron:
                raise InvalidInput(
                    f"{bad_zone.detail}; {bad_cron.detail}", bad_zone.errors + bad_cron.errors
                ) from None
            raise
        _, first = parse_cron(cron, zone, now_ms)
        return None if paused else first

    async def create(self, body: Mapping[str, Any]) -> Schedule:
        """A new schedule from a body that passed the ScheduleCreate schema.

        Raises:
            InvalidInput: see `_first_run`.
            Conflict: the id is taken.
        """
        now_ms = self._clock.now_ms()
        timezone = body.get("timezone", DEFAULT_TIMEZONE)
        paused = bool(body.get("paused", False))
        schedule = Schedule(
            id=body["id"],
            cron=body["cron"],
            timezone=timezone,
            queue=body["queue"],
            task_json=task_template_json(body["task"]),
            missed=MissedPolicy(body.get("missed", DEFAULT_MISSED)),
            max_catch_up=body.get("max_catch_up", DEFAULT_MAX_CATCH_UP),
            paused=paused,
            next_run_at_ms=self._first_run(body["cron"], timezone, paused, now_ms),
            last_run_at_ms=None,
            last_task_id=None,
            revision=1,
            created_at_ms=now_ms,
            updated_at_ms=now_ms,
        )
        return await self._store.create_schedule(schedule, now_ms)

    async def get(self, schedule_id: str, check_queue: QueueCheck = _allow_any) -> Schedule:
        """One schedule.

        Raises:
            NotFound: no such schedule.
            Forbidden: `check_queue` refuses its queue.
        """
        schedule = await self._store.get_schedule(schedule_id)
        if schedule is None:
            raise NotFound(f"schedule {schedule_id!r} does not exist")
        check_queue(schedule.queue)
        return schedule

    async def list_page(
        self, cursor: str | None, limit: int, visible: Callable[[str], bool]
    ) -> tuple[list[Schedule], str | None]:
        """A page of the schedules whose queue is `visible`, and the next cursor."""
        page = await self._store.list_schedules(cursor, limit + 1)
        next_cursor = None
        if len(page) > limit:
            page = page[:limit]
            next_cursor = page[-1].id
        return [s for s in page if visible(s.queue)], next_cursor

    async def update(
        self, schedule_id: str, patch: Mapping[str, Any], check_queue: QueueCheck = _allow_any
    ) -> Schedule:
        """Apply a validated SchedulePatch; fields left out keep their value.

        A new cron or time zone, or a resume, computes `next_run_at` afresh from now
        (fire times that passed while paused are not caught up); pausing clears it.

        Raises:
            NotFound, Forbidden (old or new queue), InvalidInput (see `_first_run`),
            Conflict (changed by others three times in a row).
        """

        async def attempt() -> Schedule:
            current = await self.get(schedule_id, check_queue)
            changed = self._patched(current, patch)
            check_queue(changed.queue)
            timing = ("cron", "timezone", "paused")
            reschedule = any(getattr(changed, f) != getattr(current, f) for f in timing)
            now_ms = self._clock.now_ms()
            if reschedule:
                next_run = self._first_run(changed.cron, changed.timezone, changed.paused, now_ms)
                changed = replace(changed, next_run_at_ms=next_run)
            return await self._store.update_schedule(changed, reschedule, now_ms)

        return await _retrying(attempt)

    @staticmethod
    def _patched(current: Schedule, patch: Mapping[str, Any]) -> Schedule:
        changes: dict[str, Any] = {
            key: patch[key]
            for key in ("cron", "timezone", "queue", "max_catch_up", "paused")
            if key in patch
        }
        if "missed" in patch:
            changes["missed"] = MissedPolicy(patch["missed"])
        if "task" in patch:
            changes["task_json"] = task_template_json(patch["task"])
        return replace(current, **changes)

    async def delete(self, schedule_id: str, check_queue: QueueCheck = _allow_any) -> None:
        """Delete a schedule; the tasks it submitted stay.

        Raises:
            NotFound, Forbidden, Conflict (changed by others three times in a row).
        """

        async def attempt() -> None:
            current = await self.get(schedule_id, check_queue)
            await self._store.delete_schedule(schedule_id, current.revision)

        await _retrying(attempt)
