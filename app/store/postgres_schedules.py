"""The PostgreSQL side of schedules: reads, and the write operations (create, update,
delete, fire) that run inside their caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.core.errors import Conflict, NotFound, TaskgateError
from app.core.models import FireOrder, FireOutcome, Schedule, SubmitOutcome
from app.store.postgres_ops import (
    Connection,
    PostgresWriteOps,
    Queries,
    changed,
    fetch_all,
    fetch_one,
)
from app.store.rows import schedule_from_row


def _settings(schedule: Schedule) -> dict[str, Any]:
    return {
        "id": schedule.id,
        "cron": schedule.cron,
        "timezone": schedule.timezone,
        "queue": schedule.queue,
        "task": schedule.task_json,
        "missed": schedule.missed.value,
        "max_catch_up": schedule.max_catch_up,
        "paused": schedule.paused,
        "next_run_at": schedule.next_run_at_ms,
    }


class PostgresSchedules:
    """Schedule queries over a given connection."""

    def __init__(self, queries: Queries, write_ops: PostgresWriteOps) -> None:
        self._q = queries
        self._write_ops = write_ops

    # -- reads ------------------------------------------------------------------------

    async def get(self, conn: Connection, schedule_id: str) -> Schedule | None:
        row = await fetch_one(conn, self._q["schedule_get"], {"id": schedule_id})
        return None if row is None else schedule_from_row(row)

    async def page(self, conn: Connection, after_id: str | None, limit: int) -> list[Schedule]:
        rows = await fetch_all(
            conn, self._q["schedule_list"], {"after_id": after_id, "limit": limit}
        )
        return [schedule_from_row(row) for row in rows]

    async def due(self, conn: Connection, now_ms: int, limit: int) -> list[Schedule]:
        rows = await fetch_all(conn, self._q["schedules_due"], {"now": now_ms, "limit": limit})
        return [schedule_from_row(row) for row in rows]

    # -- writes -----------------------------------------------------------------------

    async def create(self, conn: Connection, schedule: Schedule, now_ms: int) -> Schedule:
        row = await fetch_one(
            conn, self._q["schedule_insert"], {**_settings(schedule), "now": now_ms}
        )
        if row is None:
            raise Conflict(
                f"a schedule named {schedule.id!r} exists already; "
                f"change it with PATCH /v1/schedules/{schedule.id} or pick another id"
            )
        return schedule_from_row(row)

    async def update(
        self, conn: Connection, schedule: Schedule, reschedule: bool, now_ms: int
    ) -> Schedule:
        row = await fetch_one(
            conn,
            self._q["schedule_update"],
            {
                **_settings(schedule),
                "reschedule": reschedule,
                "revision": schedule.revision,
                "now": now_ms,
            },
        )
        if row is None:
            raise await self._lost(conn, schedule.id)
        return schedule_from_row(row)

    async def delete(self, conn: Connection, schedule_id: str, revision: int) -> None:
        params = {"id": schedule_id, "revision": revision}
        if await changed(conn, self._q["schedule_delete"], params) == 0:
            raise await self._lost(conn, schedule_id)

    async def _lost(self, conn: Connection, schedule_id: str) -> TaskgateError:
        if await self.get(conn, schedule_id) is None:
            return NotFound(f"schedule {schedule_id!r} does not exist")
        return Conflict(f"schedule {schedule_id!r} was changed at the same time; try again")

    async def fire(
        self, conn: Connection, orders: Sequence[FireOrder], now_ms: int
    ) -> list[FireOutcome]:
        """Each order on its own: a lost compare-and-set, or a failure, changes nothing."""
        outcomes: list[FireOutcome] = []
        for order in orders:
            try:
                async with conn.transaction():
                    outcomes.append(await self._fire_one(conn, order, now_ms))
            except TaskgateError as exc:
                outcomes.append(FireOutcome(fired=False, outcomes=(exc,)))
        return outcomes

    async def _fire_one(self, conn: Connection, order: FireOrder, now_ms: int) -> FireOutcome:
        advanced = await fetch_one(
            conn,
            self._q["schedule_advance"],
            {
                "id": order.schedule_id,
                "revision": order.revision,
                "expected_next_run_at": order.expected_next_run_at_ms,
                "next_run_at": order.next_run_at_ms,
            },
        )
        if advanced is None:
            return FireOutcome(fired=False)
        if not order.tasks:
            return FireOutcome(fired=True)
        # Each task carries the key `schedule:<id>:<fire ms>`: should two processes ever
        # both get past the compare-and-set, the second submit is an idempotent replay.
        submitted = await self._write_ops.submit(conn, order.tasks, now_ms)
        last = submitted[-1]
        await conn.execute(
            self._q["schedule_record_run"],
            {
                "id": order.schedule_id,
                "last_run_at": order.fire_times_ms[-1],
                "last_task_id": last.task.id if isinstance(last, SubmitOutcome) else None,
            },
        )
        return FireOutcome(fired=True, outcomes=tuple(submitted))
