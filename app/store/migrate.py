"""Applies the forward-only migrations (yoyo-migrations) to a database before serving:
migrations/sqlite/ to a SQLite file, migrations/postgres/ to a PostgreSQL database."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from yoyo import get_backend, read_migrations
from yoyo.backends.base import DatabaseBackend

from app.core.errors import StoreError
from app.resources import migrations_dir
from app.settings import Settings, redact_url


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
        return _apply(get_backend(sqlite_url(path)), "sqlite")
    except (sqlite3.Error, OSError) as exc:
        raise StoreError(f"cannot migrate {path}: {exc}") from exc


def migrate_database(settings: Settings) -> MigrationReport:
    """Migrate the database the settings name: PostgreSQL at `database_url` when it is
    set, else the SQLite file `database`.

    Raises:
        StoreError: the database cannot be reached or a migration fails.
    """
    if settings.database_url:
        return migrate_postgres(settings.database_url)
    return migrate_sqlite(settings.database_path)


def migrate_postgres(url: str) -> MigrationReport:
    """Bring the PostgreSQL database at `url` to the latest schema.

    Raises:
        StoreError: the database cannot be reached or a migration fails.
    """
    import psycopg  # only here: SQLite-only processes do not pay for importing it

    # yoyo picks its driver by scheme: `postgresql+psycopg` is psycopg 3, ours.
    yoyo_url = "postgresql+psycopg://" + url.split("://", 1)[1]
    try:
        return _apply(get_backend(yoyo_url), "postgres")
    except psycopg.Error as exc:
        raise StoreError(f"cannot migrate {redact_url(url)}: {exc}") from exc


def _apply(backend: DatabaseBackend, dialect: str) -> MigrationReport:
    try:
        migrations = read_migrations(str(migrations_dir(dialect)))
        with backend.lock():
            pending = backend.to_apply(migrations)
            done = [m.id for m in migrations if m.id not in {p.id for p in pending}]
            backend.apply_migrations(pending)
    finally:
        backend.connection.close()
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
