"""`taskgate schedules`: list, show, create, pause, resume and delete cron schedules."""

from __future__ import annotations

import argparse

from rich.console import RenderableType

from app.cli.output import Output, compact_json, fields_table, grid, short_time
from app.cli.remote import EXIT_OK, RemoteHandler, Subcommands, remote_command
from app.cli.values import json_value, positive_int
from runners import Client
from runners.schedules import Schedule


def schedule_rows(schedules: list[Schedule]) -> RenderableType:
    return grid(
        ("id", "cron", "timezone", "queue", "type", "paused", "next run", "last run"),
        (
            (
                s.id,
                s.cron,
                s.timezone,
                s.queue,
                s.task.get("type"),
                s.paused,
                short_time(s.next_run_at),
                short_time(s.last_run_at),
            )
            for s in schedules
        ),
    )


def schedule_fields(schedule: Schedule) -> RenderableType:
    return fields_table(
        [
            ("id", schedule.id),
            ("cron", schedule.cron),
            ("timezone", schedule.timezone),
            ("queue", schedule.queue),
            ("task", compact_json(dict(schedule.task))),
            ("missed", schedule.missed),
            ("max catch-up", schedule.max_catch_up),
            ("paused", schedule.paused),
            ("next run", short_time(schedule.next_run_at)),
            ("last run", short_time(schedule.last_run_at)),
            ("last task", schedule.last_task_id or "-"),
        ]
    )


def list_schedules(client: Client, args: argparse.Namespace, output: Output) -> int:
    schedules = list(client.iter_schedules())
    output.show(schedules, lambda: schedule_rows(schedules))
    return EXIT_OK


def show_schedule(client: Client, args: argparse.Namespace, output: Output) -> int:
    schedule = client.get_schedule(args.schedule_id)
    output.show(schedule, lambda: schedule_fields(schedule))
    return EXIT_OK


def create_schedule(client: Client, args: argparse.Namespace, output: Output) -> int:
    task: dict[str, object] = {"type": args.type, "payload": args.payload}
    if args.priority:
        task["priority"] = args.priority
    if args.tag:
        task["tags"] = args.tag
    schedule = client.create_schedule(
        args.schedule_id,
        cron=args.cron,
        queue=args.queue,
        task=task,
        timezone=args.timezone,
        missed=args.missed,
        max_catch_up=args.max_catch_up,
        paused=True if args.paused else None,
    )
    output.show(schedule, lambda: schedule_fields(schedule))
    return EXIT_OK


def pausing(paused: bool) -> RemoteHandler:
    """The handler of `schedules pause` (True) or `schedules resume` (False)."""

    def set_paused(client: Client, args: argparse.Namespace, output: Output) -> int:
        schedule = client.update_schedule(args.schedule_id, paused=paused)
        output.show(schedule, lambda: schedule_fields(schedule))
        return EXIT_OK

    return set_paused


def delete_schedule(client: Client, args: argparse.Namespace, output: Output) -> int:
    client.delete_schedule(args.schedule_id)
    return EXIT_OK


def add_schedule_commands(commands: Subcommands, parents: list[argparse.ArgumentParser]) -> None:
    """`schedules` and its subcommands (a bare `schedules` lists them)."""
    group = remote_command(
        commands,
        "schedules",
        list_schedules,
        parents=parents,
        help="cron schedules: list (default), show, create, pause, resume, delete",
        description="Cron schedules that submit a task at each fire time (needs queues:admin).",
    )
    actions = group.add_subparsers(dest="schedule_action")
    remote_command(actions, "list", list_schedules, parents=parents, help="the schedules, by id")
    for name, handler, text in (
        ("show", show_schedule, "one schedule"),
        ("pause", pausing(True), "stop firing until resumed (missed fire times are skipped)"),
        ("resume", pausing(False), "fire again from the next fire time"),
        ("delete", delete_schedule, "delete it (tasks it already submitted stay)"),
    ):
        parser = remote_command(actions, name, handler, parents=parents, help=text)
        parser.add_argument("schedule_id", metavar="ID")
    create = remote_command(
        actions, "create", create_schedule, parents=parents, help="create a schedule"
    )
    create.add_argument("schedule_id", metavar="ID", help="the schedule's name (its id)")
    create.add_argument("--cron", required=True, help="5 fields, or 6 with seconds first")
    create.add_argument("--queue", required=True, help="the queue its tasks go to")
    create.add_argument("--type", required=True, help="the task type")
    create.add_argument(
        "--payload", type=json_value, metavar="JSON", default=None, help="JSON, or @file.json"
    )
    create.add_argument("--timezone", help="an IANA time zone (default UTC)")
    create.add_argument("--priority", choices=("high", "normal", "low"))
    create.add_argument("--tag", action="append", help="a tag for its tasks (repeatable)")
    create.add_argument("--missed", choices=("skip", "run_once", "run_all"))
    create.add_argument(
        "--max-catch-up", type=positive_int, help="with --missed run_all: at most this many"
    )
    create.add_argument("--paused", action="store_true", help="create it paused")
