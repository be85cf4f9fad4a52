"""`taskgate queues [list | show | pause | resume | configure]` and `taskgate stats`.

`stats` is the queues' task counts by state, with a total row, from the same endpoints.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import Any

from rich.console import RenderableType

from app.cli.output import Output, fields_table, grid
from app.cli.remote import EXIT_OK, Subcommands, connection_flags, remote_command
from app.cli.values import positive_int, seconds_value
from runners import Client, Delivery, Queue, QueueCounts, RetryPolicy, WebhookPatch

COUNT_FIELDS = ("queued", "due", "scheduled", "running", "succeeded", "dead", "cancelled")
# Fields `queues configure --reset` can put back to the server default.
RESETTABLE = ("max_attempts", "retry", "lease_seconds", "retention_seconds", "webhook")


def queue_fields(queue: Queue) -> RenderableType:
    """One queue: state, counts, configuration, delivery."""
    counts, config = queue.counts, queue.config
    retry = config.retry
    paused: Any = queue.paused
    if queue.paused and queue.pause_reason:
        paused = f"yes: {queue.pause_reason}"
    rows: list[tuple[str, Any]] = [
        ("name", queue.name),
        ("paused", paused),
        ("delivery", queue.delivery),
        *((name, getattr(counts, name)) for name in COUNT_FIELDS),
        ("oldest due", _age(queue.oldest_due_age_seconds)),
        ("max attempts", config.max_attempts),
        ("lease seconds", config.lease_seconds),
        (
            "retry",
            f"initial {retry.initial_delay_seconds} s, factor {retry.factor}, "
            f"max {retry.max_delay_seconds} s, jitter {'on' if retry.jitter else 'off'}",
        ),
        ("retention seconds", config.retention_seconds),
    ]
    if queue.webhook is not None:
        webhook = queue.webhook
        rows += [
            ("webhook", webhook.url),
            ("signing secrets", ", ".join(webhook.signing_secrets)),
            ("webhook timeout", f"{webhook.timeout_seconds} s"),
            ("webhook concurrency", webhook.max_concurrency),
            ("webhook per second", webhook.max_dispatches_per_second),
        ]
    return fields_table(rows)


def queue_rows(queues: Iterable[Queue]) -> RenderableType:
    return grid(
        ("name", "paused", "delivery", "due", "scheduled", "running", "dead", "oldest due"),
        (
            (
                queue.name,
                queue.paused,
                queue.delivery,
                queue.counts.due,
                queue.counts.scheduled,
                queue.counts.running,
                queue.counts.dead,
                _age(queue.oldest_due_age_seconds),
            )
            for queue in queues
        ),
    )


def _age(seconds: float | None) -> str | None:
    return None if seconds is None else f"{seconds:.1f} s"


def total_counts(queues: Iterable[Queue]) -> dict[str, int]:
    """Each state's count summed over `queues`."""
    total = dict.fromkeys(COUNT_FIELDS, 0)
    for queue in queues:
        for name in COUNT_FIELDS:
            total[name] += getattr(queue.counts, name)
    return total


def stats_table(queues: list[Queue], total: dict[str, int]) -> RenderableType:
    rows: list[list[Any]] = [
        [queue.name, *(getattr(queue.counts, name) for name in COUNT_FIELDS)] for queue in queues
    ]
    rows.append(["TOTAL", *(total[name] for name in COUNT_FIELDS)])
    return grid(("queue", *COUNT_FIELDS), rows)


# -- handlers --------------------------------------------------------------------------


def list_queues(client: Client, args: argparse.Namespace, output: Output) -> int:
    queues = client.list_queues()
    output.show(queues, lambda: queue_rows(queues))
    return EXIT_OK


def show_queue(client: Client, args: argparse.Namespace, output: Output) -> int:
    queue = client.get_queue(args.queue)
    output.show(queue, lambda: queue_fields(queue))
    return EXIT_OK


def pause_queue(client: Client, args: argparse.Namespace, output: Output) -> int:
    queue = client.pause(args.queue, reason=args.reason)
    output.show(queue, lambda: queue_fields(queue))
    return EXIT_OK


def resume_queue(client: Client, args: argparse.Namespace, output: Output) -> int:
    queue = client.resume(args.queue)
    output.show(queue, lambda: queue_fields(queue))
    return EXIT_OK


def configure_queue(client: Client, args: argparse.Namespace, output: Output) -> int:
    retry_values = (args.retry_initial_seconds, args.retry_factor, args.retry_max_seconds)
    retry = None
    if any(value is not None for value in retry_values) or args.retry_jitter is not None:
        retry = RetryPolicy(*retry_values, jitter=args.retry_jitter)
    webhook = None
    if args.webhook_url is not None:
        webhook = WebhookPatch(
            args.webhook_url,
            timeout_seconds=args.webhook_timeout_seconds,
            max_concurrency=args.webhook_max_concurrency,
            max_dispatches_per_second=args.webhook_max_per_second,
        )
    elif any(
        value is not None
        for value in (
            args.webhook_timeout_seconds,
            args.webhook_max_concurrency,
            args.webhook_max_per_second,
        )
    ):
        args.command_parser.error("--webhook-* settings need --webhook-url (it is replaced whole)")
    changes = (args.max_attempts, retry, args.lease_seconds, args.retention_seconds)
    if all(value is None for value in changes) and not (args.delivery or webhook or args.reset):
        args.command_parser.error("nothing to change: give at least one setting or --reset")
    queue = client.configure_queue(
        args.queue,
        max_attempts=args.max_attempts,
        retry=retry,
        lease_seconds=args.lease_seconds,
        retention_seconds=args.retention_seconds,
        delivery=args.delivery,
        webhook=webhook,
        reset=args.reset or (),
    )
    output.show(queue, lambda: queue_fields(queue))
    return EXIT_OK


def stats(client: Client, args: argparse.Namespace, output: Output) -> int:
    if args.queues:
        queues = [client.get_queue(name) for name in args.queues]
    else:
        queues = client.list_queues()
    total = total_counts(queues)
    data = {
        "queues": {queue.name: _counts_dict(queue.counts) for queue in queues},
        "total": total,
    }
    output.show(data, lambda: stats_table(queues, total))
    return EXIT_OK


def _counts_dict(counts: QueueCounts) -> dict[str, int]:
    return {name: getattr(counts, name) for name in COUNT_FIELDS}


# -- parsers ---------------------------------------------------------------------------


def add_queue_commands(commands: Subcommands, parents: list[argparse.ArgumentParser]) -> None:
    """`queues` (list) with `show`, `pause`, `resume`, `configure`; and `stats`."""
    stats_parser = remote_command(
        commands,
        "stats",
        stats,
        parents=parents,
        help="task counts by state per queue, with a total",
    )
    stats_parser.add_argument(
        "queues", metavar="QUEUE", nargs="*", help="only these queues (default: every queue)"
    )
    queues = remote_command(
        commands, "queues", list_queues, parents=parents, help="list queues with live stats"
    )
    actions = queues.add_subparsers(dest="queues_action", metavar="ACTION")
    parents = [connection_flags(nested=True)]
    remote_command(actions, "list", list_queues, parents=parents, help="list queues (the default)")
    for name, handler, text in (
        ("show", show_queue, "show one queue: counts, configuration, delivery"),
        ("resume", resume_queue, "hand out claims from a paused queue again"),
    ):
        remote_command(actions, name, handler, parents=parents, help=text).add_argument(
            "queue", metavar="QUEUE"
        )
    pause = remote_command(
        actions,
        "pause",
        pause_queue,
        parents=parents,
        help="stop handing out claims (submits are still accepted)",
    )
    pause.add_argument("queue", metavar="QUEUE")
    pause.add_argument("--reason", help="shown with the queue until it is resumed")
    _add_configure(actions, parents)


def _add_configure(actions: Subcommands, parents: list[argparse.ArgumentParser]) -> None:
    configure = remote_command(
        actions,
        "configure",
        configure_queue,
        parents=parents,
        help="change a queue's task defaults, retention or delivery",
        description="Change a queue's defaults (creating the queue if needed). Settings not "
        "given keep their value. The --retry-* flags replace the queue's retry policy as a "
        "whole: the ones left out take the server defaults.",
    )
    configure.add_argument("queue", metavar="QUEUE")
    configure.add_argument("--max-attempts", type=positive_int, metavar="N")
    configure.add_argument("--lease-seconds", type=positive_int, metavar="S")
    configure.add_argument(
        "--retention-seconds", type=int, metavar="S", help="keep finished tasks S seconds"
    )
    configure.add_argument("--retry-initial-seconds", type=seconds_value, metavar="S")
    configure.add_argument("--retry-factor", type=float, metavar="F")
    configure.add_argument("--retry-max-seconds", type=seconds_value, metavar="S")
    configure.add_argument("--retry-jitter", action=argparse.BooleanOptionalAction)
    configure.add_argument("--delivery", choices=[d.value for d in Delivery])
    configure.add_argument("--webhook-url", metavar="URL", help="push tasks to this URL")
    configure.add_argument("--webhook-timeout-seconds", type=float, metavar="S")
    configure.add_argument("--webhook-max-concurrency", type=positive_int, metavar="N")
    configure.add_argument("--webhook-max-per-second", type=float, metavar="N")
    configure.add_argument(
        "--reset",
        action="append",
        choices=RESETTABLE,
        help="put a setting back to the server default (repeatable); 'webhook' removes it",
    )
