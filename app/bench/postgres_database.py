"""A fresh PostgreSQL database for one spawned benchmark server, dropped afterwards.

`taskgate bench --spawn --database-url postgresql://…/postgres` names a PostgreSQL server
(and a database to connect to for administration); each spawned server gets a database of
its own, `taskgate_bench_<random>`, created and migrated here, so runs start empty as they
do on SQLite. The URL's user needs the CREATEDB privilege.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from app.settings import redact_url
from app.store.migrate import migrate_postgres


class BenchDatabaseError(Exception):
    """The benchmark's database could not be made or migrated."""


def with_database(url: str, database: str) -> str:
    """`url` with its path (the database name) replaced by `database`."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


def server_version(url: str) -> str | None:
    """The PostgreSQL server's version string, or None when it does not answer."""
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=5) as connection:
            row = connection.execute("SHOW server_version").fetchone()
    except psycopg.Error:
        return None
    return str(row[0]) if row else None


def local_postmaster_pid(url: str) -> int | None:
    """The pid of the PostgreSQL server at `url` when it runs on this machine and its
    data directory is readable (a superuser's URL); else None."""
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=5) as connection:
            row = connection.execute("SELECT current_setting('data_directory')").fetchone()
        if row is None:
            return None
        first_line = (Path(str(row[0])) / "postmaster.pid").read_text().split("\n", 1)[0]
        pid = int(first_line)
    except (psycopg.Error, OSError, ValueError, TypeError):
        return None
    return pid if Path(f"/proc/{pid}").exists() else None


@contextlib.contextmanager
def fresh_database(admin_url: str, keep: bool = False) -> Iterator[str]:
    """Create and migrate a new database on `admin_url`'s server; its URL.

    Dropped at exit (its connections ended first) unless `keep`.

    Raises:
        BenchDatabaseError: the server refused (no CREATEDB, unreachable, bad URL).
    """
    import psycopg
    from psycopg import sql

    name = f"taskgate_bench_{os.urandom(6).hex()}"
    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as admin:
            admin.execute(
                sql.SQL("CREATE DATABASE {} ENCODING 'UTF8'").format(sql.Identifier(name))
            )
    except psycopg.Error as exc:
        raise BenchDatabaseError(
            f"cannot create a database on {redact_url(admin_url)}: {exc}".strip()
        ) from exc
    url = with_database(admin_url, name)
    try:
        migrate_postgres(url)
        yield url
    finally:
        if not keep:
            with (
                contextlib.suppress(psycopg.Error),
                psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as admin,
            ):
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
