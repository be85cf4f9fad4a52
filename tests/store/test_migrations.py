"""Migrations: applying all of them gives the committed snapshot; claims use the partial index."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from app.resources import CHECKOUT_ROOT
from app.store.migrate import migrate_sqlite, schema_sql
from app.store.queries import load_queries, parse_named_queries
from app.store.sqlite import SqliteOptions, connect

SNAPSHOT = CHECKOUT_ROOT / "migrations" / "schema" / "sqlite.sql"


def test_migrations_equal_the_committed_snapshot(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    report = migrate_sqlite(path)
    assert report.applied and not report.already_applied
    snapshot = "".join(
        line for line in SNAPSHOT.read_text().splitlines(keepends=True) if not line.startswith("--")
    )
    assert schema_sql(path) == snapshot


def test_migrating_twice_applies_nothing_new(tmp_path: Path) -> None:
    path = tmp_path / "twice.db"
    first = migrate_sqlite(path)
    second = migrate_sqlite(path)
    assert second.applied == () and second.already_applied == first.applied


def test_database_is_in_wal_mode(db_path: Path) -> None:
    with sqlite3.connect(db_path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    connection.close()


def plan(db_path: Path, query: str, params: dict[str, object]) -> list[str]:
    sql = load_queries("sqlite")[query]
    connection = connect(SqliteOptions(path=db_path))
    try:
        return [str(row[3]) for row in connection.execute("EXPLAIN QUERY PLAN " + sql, params)]
    finally:
        connection.close()


def test_claim_walks_only_the_due_partial_index(db_path: Path) -> None:
    """Claim cost must not grow with finished or future tasks: the pick uses tasks_due,
    and the lease finds the picked rows by primary key."""
    lease = {"now": 0, "lease_seconds": None, "worker_id": "w"}
    pick = plan(
        db_path,
        "claim_pick",
        {"queue": "q", "priority": 1, "now": 0, "limit": 1, "types": None},
    )
    one = plan(db_path, "claim_one", {**lease, "id": "t"})
    many = plan(db_path, "claim_many", {**lease, "ids": "[]"})

    for details in (pick, one, many):
        searches = [d for d in details if d.startswith(("SEARCH tasks", "SCAN tasks"))]
        assert searches and not any(d.startswith("SCAN tasks") for d in searches), details
    assert any("tasks_due" in d for d in pick), pick
    assert any("(id=?)" in d for d in one + many), (one, many)


def test_queue_depths_read_index_ranges_only(db_path: Path) -> None:
    """A metrics scrape must not grow with finished tasks: every read of `tasks` is a
    search of an index that holds only the states it counts, never a scan."""
    details = plan(db_path, "queue_depths", {"now": 0})
    reads = [d for d in details if d.startswith(("SEARCH tasks", "SCAN tasks"))]
    assert len(reads) == 7, details
    assert all(d.startswith("SEARCH tasks USING COVERING INDEX") for d in reads), details
    assert all("queue=?" in d for d in reads), details


def test_listing_a_queue_state_walks_its_index(db_path: Path) -> None:
    sql = load_queries("sqlite")["task_list_queue_state"]
    params = {
        "queue": "q",
        "state": "dead",
        "type": None,
        "tag": None,
        "before_id": None,
        "limit": 5,
    }
    connection = connect(SqliteOptions(path=db_path))
    try:
        details = [str(row[3]) for row in connection.execute("EXPLAIN QUERY PLAN " + sql, params)]
    finally:
        connection.close()
    assert any("tasks_by_queue_state" in d for d in details), details
    assert not any("TEMP B-TREE" in d for d in details), details


def test_named_queries_parse_and_reject_duplicates() -> None:
    parsed = parse_named_queries("-- name: a\nSELECT 1;\n-- name: b\nSELECT 2;\n")
    assert parsed == {"a": "SELECT 1;", "b": "SELECT 2;"}
    try:
        parse_named_queries("-- name: a\nSELECT 1;\n-- name: a\nSELECT 2;\n")
    except ValueError as exc:
        assert "twice" in str(exc)
    else:
        raise AssertionError("a duplicate name must be refused")


def test_upgrading_a_version_1_database_keeps_its_data(tmp_path: Path) -> None:
    """A database made by 0001 alone, with a queue and a task, upgrades in place."""
    from yoyo import get_backend, read_migrations

    only_first = tmp_path / "v1"
    only_first.mkdir()
    first = CHECKOUT_ROOT / "migrations" / "sqlite" / "0001_initial.sql"
    (only_first / first.name).write_text(first.read_text())
    path = tmp_path / "old.db"
    backend = get_backend(f"sqlite:///{path}")
    with backend.lock():
        backend.apply_migrations(backend.to_apply(read_migrations(str(only_first))))
    backend.connection.close()
    with sqlite3.connect(path) as connection:
        connection.execute(
            "INSERT INTO queues (name, paused, created_at, updated_at) VALUES ('old', 1, 1, 1)"
        )
        connection.execute(
            "INSERT INTO tasks (id, queue, type, payload, priority, state, max_attempts, "
            "lease_seconds, run_at, created_at, updated_at) "
            "VALUES ('t1', 'old', 'x', '{}', 1, 'queued', 3, 60, 1, 1, 1)"
        )
    connection.close()

    report = migrate_sqlite(path)

    assert report.already_applied == ("0001_initial",)
    assert "0002_push_delivery" in report.applied
    with sqlite3.connect(path) as connection:
        queue = connection.execute("SELECT paused, delivery, webhook FROM queues").fetchone()
        task = connection.execute("SELECT id, state FROM tasks").fetchone()
    connection.close()
    assert queue == (1, "pull", None)
    assert task == ("t1", "queued")
