"""`taskgate backup DEST`: an online copy of the database file, safe while servers run.

It works on the file (like `migrate`), not over HTTP; the copying is app.store.backup's.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from app.cli.options import add_settings_flags
from app.cli.output import error_console
from app.settings import Settings
from app.store.backup import BackupReport, backup_sqlite


def add_backup_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("destination", metavar="DEST", type=Path, help="the backup file to write")
    parser.add_argument(
        "--force", action="store_true", help="replace DEST if it exists (atomically)"
    )
    add_settings_flags(parser, names=("database",))
    parser.set_defaults(command_parser=parser)


def run_backup(settings: Settings, args: argparse.Namespace) -> int:
    """Back up the settings' database to DEST with a progress bar on a terminal; exit code.

    Raises:
        StoreError: the backup failed (nothing is left at DEST).
    """
    if settings.database_url:
        print(
            "taskgate: backup copies a SQLite file; back up PostgreSQL with its own tools "
            "(pg_dump, base backups, or your provider's)",
            file=sys.stderr,
        )
        return 1
    destination: Path = args.destination
    if destination.exists() and not destination.is_dir() and not args.force:
        print(
            f"taskgate: {destination} already exists; pass --force to replace it",
            file=sys.stderr,
        )
        return 1
    console = error_console()
    progress = Progress(
        TextColumn("backup"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    try:
        with progress:
            bar = progress.add_task("backup", total=None)

            def advance(copied: int, total: int) -> None:
                progress.update(bar, completed=copied, total=total)

            report = backup_sqlite(
                settings.database_path, destination, overwrite=args.force, on_progress=advance
            )
    except KeyboardInterrupt:  # the temporary copy is already removed
        print("taskgate: interrupted; no backup written", file=sys.stderr)
        return 130
    print(describe(report))
    return 0


def describe(report: BackupReport) -> str:
    """`taskgate.db → backup.db: 1,234 tasks, 5.2 MiB, integrity ok`."""
    mebibytes = report.size_bytes / (1024 * 1024)
    return (
        f"{report.source} → {report.destination}: {report.tasks:,} tasks, "
        f"{mebibytes:.1f} MiB, integrity ok"
    )
