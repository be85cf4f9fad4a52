"""A throwaway PostgreSQL for tests: one server per session, a fresh database per test.

The server is the local binaries' (`initdb`, `pg_ctl`): a cluster in a temp dir, on
127.0.0.1 and a free port, without fsync (nothing here must survive a crash). initdb
refuses root, so as root the cluster is made and run by the `postgres` system user.
Each test gets its own database, copied from a template migrated once per session;
a longer-lived fixture takes one with `PostgresServer.database()`.
Skipped locally when the binaries are missing; a failure in CI.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from app.store.migrate import migrate_postgres
from tests.redis_server import free_port

TEMPLATE = "taskgate_template"
SUPERUSER = "postgres"


def find_bindir() -> Path | None:
    """Where initdb and pg_ctl are: pg_config's bindir, Debian's versioned dir, or PATH."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        answer = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=False
        ).stdout.strip()
        if answer:
            candidates.append(Path(answer))
    versioned = [Path(path) for path in glob.glob("/usr/lib/postgresql/*/bin")]
    candidates += sorted(
        (path for path in versioned if path.parent.name.isdigit()),
        key=lambda path: int(path.parent.name),
        reverse=True,
    )
    initdb = shutil.which("initdb")
    if initdb is not None:
        candidates.append(Path(initdb).resolve().parent)
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    return None


@dataclass
class PostgresServer:
    """A PostgreSQL cluster in `directory`, listening on 127.0.0.1:`port`."""

    bindir: Path
    directory: Path
    port: int = field(default_factory=free_port)
    _names: Iterator[int] = field(default_factory=itertools.count)

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def log_path(self) -> Path:
        return self.directory / "server.log"

    def url(self, database: str) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _run_as_owner(self, *command: str) -> None:
        prefix = ["runuser", "-u", SUPERUSER, "--"] if os.geteuid() == 0 else []
        done = subprocess.run([*prefix, *command], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            log = self.log_path.read_text() if self.log_path.exists() else ""
            pytest.fail(f"{command[0]} failed: {done.stderr}{done.stdout}\n{log}")

    def start(self) -> None:
        if os.geteuid() == 0:
            owner = pwd.getpwnam(SUPERUSER)
            os.chown(self.directory, owner.pw_uid, owner.pw_gid)
        self._run_as_owner(
            str(self.bindir / "initdb"),
            *("-D", str(self.data_dir), "-U", SUPERUSER, "--auth=trust"),
            *("--encoding=UTF8", "--locale=C", "--no-sync"),
        )
        options = " ".join(
            [
                "-c listen_addresses=127.0.0.1",
                f"-c port={self.port}",
                f"-c unix_socket_directories={self.directory}",
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off",
                "-c max_connections=300",
            ]
        )
        self._run_as_owner(
            str(self.bindir / "pg_ctl"),
            *("-D", str(self.data_dir), "-l", str(self.log_path), "-o", options),
            *("-w", "-t", "60", "start"),
        )

    def stop(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            self._run_as_owner(
                str(self.bindir / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "stop"
            )

    def admin(self, sql: str) -> None:
        """Run one statement as the superuser, outside a transaction."""
        with psycopg.connect(self.url("postgres"), autocommit=True) as connection:
            connection.execute(sql)

    def make_template(self) -> None:
        self.admin(f"CREATE DATABASE {TEMPLATE}")
        migrate_postgres(self.url(TEMPLATE))

    def create_database(self) -> str:
        """A fresh, migrated database (a copy of the template); its name."""
        name = f"taskgate_test_{next(self._names)}"
        self.admin(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
        return name

    def drop_database(self, name: str) -> None:
        self.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    @contextlib.contextmanager
    def database(self) -> Iterator[str]:
        """A fresh, migrated database for the `with` block (its URL), dropped at exit."""
        name = self.create_database()
        try:
            yield self.url(name)
        finally:
            self.drop_database(name)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A running PostgreSQL with a migrated template, stopped at the end of the session."""
    bindir = find_bindir()
    if bindir is None:
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL is not installed (the CI script installs it)")
        pytest.skip("PostgreSQL (initdb, pg_ctl) is not installed")
    server = PostgresServer(bindir, Path(tempfile.mkdtemp(prefix="taskgate-pg-")))
    try:
        server.start()
        server.make_template()
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.directory, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL of a freshly migrated database of its own, dropped after the test."""
    with postgres_server.database() as url:
        yield url
