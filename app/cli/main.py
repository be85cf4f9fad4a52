"""`taskgate` entry point: the server's commands (serve, migrate, token, backup, runner, bench)
and the admin commands that talk HTTP through runners.Client (one module each in app/cli/).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from app import __version__
from app.auth.jwks import JwksError
from app.auth.signing_keys import SecretFileError
from app.bench.cli import add_bench_arguments
from app.cli.backup import add_backup_arguments, run_backup
from app.cli.dead import add_dead_commands
from app.cli.options import add_settings_flags, settings_from_args
from app.cli.queues import add_queue_commands
from app.cli.remote import connection_flags, run_remote
from app.cli.schedules import add_schedule_commands
from app.cli.tail import add_tail_command
from app.cli.tasks import add_task_commands
from app.cli.token import add_token_arguments, create_token
from app.cli.workers import add_worker_commands
from app.core.errors import StoreError
from app.settings import SettingsError
from app.store.migrate import migrate_database
from runners.cli import add_runner_arguments


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="taskgate", description="HTTP-only task platform.")
    parser.add_argument("--version", action="version", version=f"taskgate {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="apply migrations and serve the HTTP API",
        description="Apply migrations, then serve the HTTP API. Every flag falls back to its "
        "TASKGATE_* environment variable, then to the config file.",
    )
    add_settings_flags(serve)
    serve.set_defaults(command_parser=serve)
    migrate = commands.add_parser(
        "migrate",
        help="apply database migrations and exit",
        description="Bring the database to the latest schema: the PostgreSQL database of "
        "--database-url when it is set, else the SQLite file of --database.",
    )
    add_settings_flags(migrate, names=("database", "database_url"))
    migrate.set_defaults(command_parser=migrate)
    token = commands.add_parser(
        "token",
        help="mint bearer tokens",
        description="Mint bearer tokens signed with the server's secret.",
    )
    add_token_arguments(token)
    runner = commands.add_parser(
        "runner",
        help="run task handlers: MODULE:ATTRIBUTE names a runners.Runner",
        description="Claim tasks and run them through a Runner until SIGTERM or SIGINT.",
    )
    add_runner_arguments(runner)
    bench = commands.add_parser(
        "bench",
        help="measure throughput and latency: submit, e2e, wake-ups, a backlog",
        description="Load a running server (--url, --token) or one it starts (--spawn) and "
        "report rates and latency percentiles. See docs/benchmarks.md.",
    )
    add_bench_arguments(bench)
    backup = commands.add_parser(
        "backup",
        help="copy the database file while the server runs",
        description="Write a consistent, checked copy of the database (--database, env "
        "TASKGATE_DATABASE) to DEST. Safe while servers are writing to it.",
    )
    add_backup_arguments(backup)
    # The admin commands: HTTP through runners.Client, each group in its own module.
    remote_parents = [connection_flags()]
    add_task_commands(commands, remote_parents)
    add_queue_commands(commands, remote_parents)
    add_dead_commands(commands, remote_parents)
    add_worker_commands(commands, remote_parents)
    add_tail_command(commands, remote_parents)
    add_schedule_commands(commands, remote_parents)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "remote_handler", None) is not None:
        return run_remote(args)
    if args.command == "runner":
        from runners.cli import run_from_args

        return run_from_args(args)
    if args.command == "bench":
        from app.bench.cli import run_bench

        return run_bench(args)
    try:
        settings = settings_from_args(args)
    except SettingsError as exc:
        args.command_parser.error(str(exc))
    try:
        if args.command == "serve":
            from app.cli.serve import serve

            serve(settings)
        elif args.command == "migrate":
            report = migrate_database(settings)
            applied = ", ".join(report.applied) or "nothing (already up to date)"
            print(f"{settings.database_label}: applied {applied}")
        elif args.command == "token":
            print(create_token(settings, args))
        elif args.command == "backup":
            return run_backup(settings, args)
    except StoreError as exc:
        print(f"taskgate: {exc.detail}", file=sys.stderr)
        return 1
    except (SecretFileError, JwksError, ValueError) as exc:
        print(f"taskgate: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
