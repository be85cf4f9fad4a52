"""Applies the forward-only migrations (yoyo-migrations) to a database before serving."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from yoyo import get_backend, read_migrations

from app.core.errors import StoreError
from app.resources import migrations_dir


@dataclass(frozen=True, slots=True)
class MigrationReport:
    """Which migrations were applied now and which were already there."""

    applied: tuple[str, ...]
    already_applied: tuple[str, ...]


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path.resolve()}"


def migrate_sqlite(path: Path) -> MigrationReport:
    """Bring the SQLite file at `path` to the latest schema (creating it if needed).

    Raises:
        StoreError: the file cannot be opened or a migration fails.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # WAL is a property of the file; set it before yoyo opens its own connection.
        with sqlite3.connect(path) as bootstrap:
            bootstrap.execute("PRAGMA journal_mode = WAL")
        bootstrap.close()
        backend = get_backend(sqlite_url(path))
        migrations = read_migrations(str(migrations_dir("sqlite")))
        with backend.lock():
            pending = backend.to_apply(migrations)
            done = [m.id for m in migrations if m.id not in {p.id for p in pending}]
            backend.apply_migrations(pending)
        backend.connection.close()
    except (sqlite3.Error, OSError) as exc:
        raise StoreError(f"cannot migrate {path}: {exc}") from exc
    return MigrationReport(applied=tuple(m.id for m in pending), already_applied=tuple(done))


def schema_sql(path: Path) -> str:
    """The schema of a SQLite file as SQL, without yoyo's bookkeeping tables."""
    with sqlite3.connect(path) as connection:
        rows = connection.execute(
            "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL "
            "AND name NOT LIKE '_yoyo%' AND name NOT LIKE 'yoyo%' ORDER BY type DESC, name"
        ).fetchall()
    connection.close()
    return "\n".join(f"{row[0]};" for row in rows) + "\n"
