"""Migrations of both dialects: applying all of them gives the committed snapshot; claims
use the partial index; both dialects name the same queries."""

from __future__ import annotations

import re
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import psycopg

from app.resources import CHECKOUT_ROOT
from app.store.migrate import migrate_postgres, migrate_sqlite, schema_sql
from app.store.queries import load_queries, parse_named_queries
from app.store.sqlite import SqliteOptions, connect
from tests.postgres_server import PostgresServer, find_bindir

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


# -- PostgreSQL -------------------------------------------------------------------------

PG_SNAPSHOT = CHECKOUT_ROOT / "migrations" / "schema" / "postgres.sql"

# Queries only one dialect has, each for a reason of its own dialect.
SQLITE_ONLY = {
    # A claim picks per priority, then leases by primary key (cheapest under SQLite's
    # one writer); PostgreSQL leases in one statement with SKIP LOCKED: `claim_due`.
    "claim_pick",
    "claim_one",
    "claim_many",
    # `taskgate backup` copies the SQLite file.
    "backup_task_count",
    "backup_integrity_check",
}
POSTGRES_ONLY = {
    "claim_due",
    # SQLite's writer holds the database's write lock; PostgreSQL locks the queue's row.
    "queue_lock",
    # Event ids are numbered after commit (migrations/postgres/0003_events.sql).
    "events_publish",
}


def test_both_dialects_define_the_same_queries_but_the_listed_ones() -> None:
    sqlite, postgres = set(load_queries("sqlite")), set(load_queries("postgres"))
    assert sqlite - postgres == SQLITE_ONLY
    assert postgres - sqlite == POSTGRES_ONLY


def postgres_schema(url: str) -> str:
    """The schema of a PostgreSQL database as pg_dump writes it, without yoyo's tables,
    comments, session settings and blank-line runs."""
    bindir = find_bindir()
    assert bindir is not None
    dump = subprocess.run(
        [
            str(bindir / "pg_dump"),
            *("--schema-only", "--no-owner", "--no-privileges"),
            *("--exclude-table", "_yoyo*", "--exclude-table", "yoyo*"),
            *("--dbname", url),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    kept = [
        line
        for line in dump.splitlines()
        if not line.startswith(("--", "SET ", "SELECT pg_catalog.set_config", "\\"))
    ]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip() + "\n"


def test_postgres_migrations_equal_the_committed_snapshot(
    postgres_server: PostgresServer,
) -> None:
    postgres_server.admin("CREATE DATABASE fresh_schema")
    try:
        url = postgres_server.url("fresh_schema")
        report = migrate_postgres(url)
        assert report.already_applied == ()
        assert report.applied == tuple(m.id for m in read_migrations_of("sqlite"))
        snapshot = "".join(
            line
            for line in PG_SNAPSHOT.read_text().splitlines(keepends=True)
            if not line.startswith("--")
        ).lstrip("\n")
        assert postgres_schema(url) == snapshot
        again = migrate_postgres(url)
        assert again.applied == () and again.already_applied == report.applied
    finally:
        postgres_server.drop_database("fresh_schema")


def read_migrations_of(dialect: str) -> list[Any]:
    from yoyo import read_migrations

    return list(read_migrations(str(CHECKOUT_ROOT / "migrations" / dialect)))


def test_the_postgres_claim_can_walk_the_due_partial_index(postgres_url: str) -> None:
    """Each priority's pick is a range of `tasks_due` (by queue, priority, due time), and
    finished or running tasks are not in that index at all."""
    sql = load_queries("postgres")["claim_due"]
    params = {"queue": "q", "worker_id": "w", "lease_seconds": None, "types": None}
    with psycopg.connect(postgres_url) as connection:
        # An empty table: make the planner show what the index can do, not what is cheap.
        connection.execute("SET enable_seqscan = off")
        plan = "\n".join(
            str(row[0])
            for row in connection.execute(
                "EXPLAIN " + sql,
                {**params, "limit": 5, "now": 0},
            )
        )
    assert plan.count("tasks_due") == 3, plan
    assert "Seq Scan on tasks" not in plan, plan


def test_upgrading_a_postgres_version_1_database_keeps_its_data(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    """A database made by 0001 alone, with a queue and a task, upgrades in place, and the
    task that was there gets its events from then on."""
    from yoyo import get_backend, read_migrations

    only_first = tmp_path / "v1"
    only_first.mkdir()
    first = CHECKOUT_ROOT / "migrations" / "postgres" / "0001_initial.sql"
    (only_first / first.name).write_text(first.read_text())
    postgres_server.admin("CREATE DATABASE old_schema")
    try:
        url = postgres_server.url("old_schema")
        backend = get_backend("postgresql+psycopg://" + url.split("://", 1)[1])
        with backend.lock():
            backend.apply_migrations(backend.to_apply(read_migrations(str(only_first))))
        backend.connection.close()
        with psycopg.connect(url) as connection:
            connection.execute(
                "INSERT INTO queues (name, paused, created_at, updated_at) "
                "VALUES ('old', true, 1, 1)"
            )
            connection.execute(
                "INSERT INTO tasks (id, queue, type, payload, priority, state, max_attempts, "
                "lease_seconds, run_at, created_at, updated_at) "
                "VALUES ('t1', 'old', 'x', '{}', 1, 'queued', 3, 60, 1, 1, 1)"
            )

        report = migrate_postgres(url)

        assert report.already_applied == ("0001_initial",)
        assert "0002_push_delivery" in report.applied
        with psycopg.connect(url) as connection:
            queue = connection.execute("SELECT paused, delivery, webhook FROM queues").fetchone()
            task = connection.execute("SELECT id, state FROM tasks").fetchone()
            connection.execute("UPDATE tasks SET state = 'cancelled', updated_at = 2")
            pending = connection.execute("SELECT task_id, state FROM events_pending").fetchall()
        assert queue == (True, "pull", None)
        assert task == ("t1", "queued")
        assert pending == [("t1", "cancelled")]
    finally:
        postgres_server.drop_database("old_schema")
