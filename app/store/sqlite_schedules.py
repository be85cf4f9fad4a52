"""The SQLite side of schedules: rows ↔ records, reads, and the write operations
(create, update, delete, fire) that run inside the group-commit transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import apsw

from app.core.errors import Conflict, NotFound, TaskgateError
from app.core.models import FireOrder, FireOutcome, Schedule, SubmitOutcome
from app.store.rows import schedule_from_row
from app.store.sqlite_ops import SqliteWriteOps


def _settings(schedule: Schedule) -> dict[str, Any]:
    return {
        "id": schedule.id,
        "cron": schedule.cron,
        "timezone": schedule.timezone,
        "queue": schedule.queue,
        "task": schedule.task_json,
        "missed": schedule.missed.value,
        "max_catch_up": schedule.max_catch_up,
        "paused": int(schedule.paused),
        "next_run_at": schedule.next_run_at_ms,
    }


class SqliteSchedules:
    """Schedule queries over a given connection (a reader's, or the writer's)."""

    def __init__(self, queries: dict[str, str], write_ops: SqliteWriteOps) -> None:
        self._q = queries
        self._write_ops = write_ops

    # -- reads ------------------------------------------------------------------------

    def get(self, conn: apsw.Connection, schedule_id: str) -> Schedule | None:
        row: Any = conn.execute(self._q["schedule_get"], {"id": schedule_id}).fetchone()
        return None if row is None else schedule_from_row(row)

    def page(self, conn: apsw.Connection, after_id: str | None, limit: int) -> list[Schedule]:
        rows = conn.execute(self._q["schedule_list"], {"after_id": after_id, "limit": limit})
        return [schedule_from_row(row) for row in rows]

    def due(self, conn: apsw.Connection, now_ms: int, limit: int) -> list[Schedule]:
        rows = conn.execute(self._q["schedules_due"], {"now": now_ms, "limit": limit})
        return [schedule_from_row(row) for row in rows]

    # -- writes -----------------------------------------------------------------------

    def create(self, conn: apsw.Connection, schedule: Schedule, now_ms: int) -> Schedule:
        row: Any = conn.execute(
            self._q["schedule_insert"], {**_settings(schedule), "now": now_ms}
        ).fetchone()
        if row is None:
            raise Conflict(
                f"a schedule named {schedule.id!r} exists already; "
                f"change it with PATCH /v1/schedules/{schedule.id} or pick another id"
            )
        return schedule_from_row(row)

    def update(
        self, conn: apsw.Connection, schedule: Schedule, reschedule: bool, now_ms: int
    ) -> Schedule:
        row: Any = conn.execute(
            self._q["schedule_update"],
            {
                **_settings(schedule),
                "reschedule": int(reschedule),
                "revision": schedule.revision,
                "now": now_ms,
            },
        ).fetchone()
        if row is None:
            raise self._lost(conn, schedule.id)
        return schedule_from_row(row)

    def delete(self, conn: apsw.Connection, schedule_id: str, revision: int) -> None:
        conn.execute(self._q["schedule_delete"], {"id": schedule_id, "revision": revision})
        if conn.changes() == 0:
            raise self._lost(conn, schedule_id)

    def _lost(self, conn: apsw.Connection, schedule_id: str) -> TaskgateError:
        if self.get(conn, schedule_id) is None:
            return NotFound(f"schedule {schedule_id!r} does not exist")
        return Conflict(f"schedule {schedule_id!r} was changed at the same time; try again")

    def fire(
        self, conn: apsw.Connection, orders: Sequence[FireOrder], now_ms: int
    ) -> list[FireOutcome]:
        """Each order on its own: a lost compare-and-set, or a failure, changes nothing."""
        outcomes: list[FireOutcome] = []
        for order in orders:
            conn.execute("SAVEPOINT fire")
            try:
                outcomes.append(self._fire_one(conn, order, now_ms))
            except TaskgateError as exc:
                conn.execute("ROLLBACK TO fire")
                # The rollback may have undone a queue row the submit ops remember.
                self._write_ops.forget_transaction()
                outcomes.append(FireOutcome(fired=False, outcomes=(exc,)))
            conn.execute("RELEASE fire")
        return outcomes

    def _fire_one(self, conn: apsw.Connection, order: FireOrder, now_ms: int) -> FireOutcome:
        advanced = conn.execute(
            self._q["schedule_advance"],
            {
                "id": order.schedule_id,
                "revision": order.revision,
                "expected_next_run_at": order.expected_next_run_at_ms,
                "next_run_at": order.next_run_at_ms,
            },
        ).fetchone()
        if advanced is None:
            return FireOutcome(fired=False)
        if not order.tasks:
            return FireOutcome(fired=True)
        # Each task carries the key `schedule:<id>:<fire ms>`: should two processes ever
        # both get past the compare-and-set, the second submit is an idempotent replay.
        submitted = self._write_ops.submit(conn, order.tasks, now_ms)
        last = submitted[-1]
        conn.execute(
            self._q["schedule_record_run"],
            {
                "id": order.schedule_id,
                "last_run_at": order.fire_times_ms[-1],
                "last_task_id": last.task.id if isinstance(last, SubmitOutcome) else None,
            },
        )
        return FireOutcome(fired=True, outcomes=tuple(submitted))
