"""`taskgate bench SCENARIO`: the flags of every scenario, and running one of them."""

from __future__ import annotations

import argparse
import datetime
import os
import sys
from pathlib import Path
from typing import Any

from app.settings import redact_url

SCENARIOS = ("submit", "submit-batch", "e2e", "e2e-single", "wake", "backlog")
SECRET_PARAMETERS = ("token",)


def positive_int(text: str) -> int:
    value = int(text.replace("_", "").replace(",", ""))
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return value


def int_list(text: str) -> list[int]:
    """`1,4,16,64` → [1, 4, 16, 64]."""
    try:
        values = [positive_int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list like 1,4,16,64") from exc
    if not values:
        raise argparse.ArgumentTypeError("give at least one value")
    return values


def positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
    return value


def _common_flags() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    target = common.add_argument_group("target (one of --url or --spawn)")
    target.add_argument("--url", help="an existing server (default: $TASKGATE_URL)")
    target.add_argument(
        "--token", help="its bearer token, with the admin scope (default: $TASKGATE_TOKEN)"
    )
    target.add_argument(
        "--spawn",
        action="store_true",
        help="start a local `taskgate serve` on a free port, rate limits lifted, with its own "
        "admin token; stopped at the end",
    )
    target.add_argument(
        "--workers", type=positive_int, default=1, help="--spawn: processes (default 1)"
    )
    target.add_argument(
        "--durability",
        choices=("full", "normal"),
        default="full",
        help="--spawn: durability (default full)",
    )
    target.add_argument(
        "--database",
        help="--spawn: SQLite file to serve (default: a fresh one in a temporary directory)",
    )
    target.add_argument(
        "--database-url",
        metavar="URL",
        help="--spawn: serve PostgreSQL instead: a server (postgresql://user:pw@host/postgres) "
        "on which the bench creates a fresh database per spawned server and drops it after "
        "(the user needs CREATEDB; default: $TASKGATE_BENCH_DATABASE_URL)",
    )
    target.add_argument(
        "--serve-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="--spawn: one more argument for `taskgate serve` (repeatable), "
        "e.g. --serve-arg=--wake-poll-seconds=0.01",
    )
    target.add_argument(
        "--keep", action="store_true", help="--spawn: keep the temporary directory (server log)"
    )
    output = common.add_argument_group("output and load generation")
    output.add_argument("--json", type=Path, metavar="PATH", help="write every figure as JSON")
    output.add_argument(
        "--repeat", type=positive_int, default=1, help="run N times, report the median"
    )
    output.add_argument(
        "--generator-processes",
        type=positive_int,
        default=1,
        metavar="P",
        help="load generator processes sharing the connections (default 1)",
    )
    output.add_argument("--no-progress", action="store_true", help="no progress bar")
    output.add_argument("--queue-prefix", default="bench", help="prefix of the queues it makes")
    return common


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    common = _common_flags()
    scenarios = parser.add_subparsers(dest="scenario", required=True, metavar="SCENARIO")

    def scenario(name: str, text: str) -> argparse.ArgumentParser:
        return scenarios.add_parser(name, parents=[common], help=text, description=text)

    submit = scenario("submit", "single-task submits from C connections: rate and latency")
    submit.add_argument(
        "--concurrency",
        type=int_list,
        default=[64],
        help="connections; a list (1,4,16,64) runs a sweep (default 64)",
    )
    submit.add_argument("--tasks", type=positive_int, help="tasks per run (default 20,000)")
    submit.add_argument("--duration", type=positive_float, help="seconds per run instead")
    submit.add_argument(
        "--rate",
        type=positive_float,
        help="pace submits to this many per second in all (latency counted from when each "
        "was due) instead of sending back to back",
    )

    batch = scenario("submit-batch", "batch submits of B tasks from C connections")
    batch.add_argument(
        "--batch-size", type=positive_int, default=1000, help="B, at most 1000 (default 1000)"
    )
    batch.add_argument("--concurrency", type=int_list, default=[4], help="connections (default 4)")
    batch.add_argument("--tasks", type=positive_int, help="tasks per run (default 200,000)")
    batch.add_argument("--duration", type=positive_float, help="seconds per run instead")
    batch.add_argument("--rate", type=positive_float, help="pace to this many requests/s")

    e2e = scenario("e2e", "producers submit batches while runners.Runner processes consume")
    _flow_flags(e2e, tasks=50_000, concurrency=4, runner_concurrency=100)
    e2e.add_argument(
        "--batch-size", type=positive_int, default=100, help="tasks per submit (default 100)"
    )
    e2e.add_argument(
        "--claim-batch",
        type=positive_int,
        default=100,
        help="tasks per claim, at most 100 (default 100)",
    )

    single = scenario("e2e-single", "one request per operation: submit 1, claim 1, complete 1")
    _flow_flags(single, tasks=10_000, concurrency=16, runner_concurrency=16)

    wake = scenario("wake", "an idle long-poll claim, one submit: latency until it returns")
    wake.add_argument(
        "--samples", type=positive_int, default=50, help="samples per case (default 50)"
    )
    wake.add_argument(
        "--settle",
        type=positive_float,
        default=0.2,
        help="seconds a claim waits before a submit (default 0.2)",
    )

    backlog = scenario("backlog", "submit, e2e and claims on an empty vs a filled database")
    backlog.add_argument(
        "--backlog",
        type=positive_int,
        default=1_000_000,
        help="queued and finished tasks each (default 1,000,000)",
    )
    backlog.add_argument(
        "--tasks", type=positive_int, default=20_000, help="submit tasks (default 20,000)"
    )
    backlog.add_argument(
        "--concurrency", type=positive_int, default=64, help="submit connections (default 64)"
    )
    backlog.add_argument(
        "--e2e-tasks", type=positive_int, default=20_000, help="e2e tasks (default 20,000)"
    )
    backlog.add_argument(
        "--runners", type=positive_int, default=2, help="e2e runner processes (default 2)"
    )
    backlog.add_argument(
        "--runner-concurrency", type=positive_int, default=100, help="as for e2e (default 100)"
    )
    backlog.add_argument(
        "--claim-batch", type=positive_int, default=100, help="as for e2e (default 100)"
    )
    backlog.add_argument(
        "--claims", type=positive_int, default=1000, help="claim probe samples (default 1000)"
    )

    plot = scenarios.add_parser(
        "plot",
        help="draw throughput and p99 against concurrency from `submit --json` files",
        description="Draw submit throughput and p99 latency against concurrency (PNG) from "
        "the JSON of `taskgate bench submit --concurrency 1,4,16,64 --json …` runs.",
    )
    plot.add_argument("results", type=Path, nargs="+", help="JSON files written by --json")
    plot.add_argument("-o", "--output", type=Path, default=Path("bench-throughput.png"))
    plot.add_argument("--title", default="taskgate submit: throughput and p99 latency")


def _flow_flags(
    parser: argparse.ArgumentParser, *, tasks: int, concurrency: int, runner_concurrency: int
) -> None:
    parser.add_argument(
        "--tasks", type=positive_int, default=tasks, help="tasks in all (default %(default)s)"
    )
    parser.add_argument(
        "--concurrency",
        type=positive_int,
        default=concurrency,
        help="producer connections (default %(default)s)",
    )
    parser.add_argument(
        "--runners", type=positive_int, default=2, help="consumer processes (default 2)"
    )
    parser.add_argument(
        "--runner-concurrency",
        type=positive_int,
        default=runner_concurrency,
        help="tasks in flight per consumer process (default %(default)s)",
    )


def run_bench(args: argparse.Namespace) -> int:
    """Run the scenario `args` name, print its table, write its JSON; the exit code."""
    if args.scenario == "plot":
        from app.bench.plot import PlotError, plot_files

        try:
            plot_files(args.results, args.output, title=args.title)
        except (PlotError, OSError, ValueError, KeyError) as exc:
            print(f"taskgate bench plot: {exc}", file=sys.stderr)
            return 1
        print(f"wrote {args.output}")
        return 0
    from rich.console import Console

    from app.bench.api import BenchError, NoMeter
    from app.bench.load import GeneratorError
    from app.bench.machine import machine_info
    from app.bench.report import RichMeter, document, render_table, write_json
    from app.bench.scenarios import median_runs, run_scenario
    from app.bench.target import TargetError
    from app.bench.wire import WireError

    problem = _check_target_flags(args)
    if problem:
        print(f"taskgate bench: {problem}", file=sys.stderr)
        return 2
    started = datetime.datetime.now(datetime.UTC)
    meter = NoMeter() if args.no_progress else RichMeter(Console(stderr=True))
    target_description: dict[str, Any] = {}
    try:
        repeats = run_scenario(args, meter, target_description)
    except (BenchError, TargetError, GeneratorError, WireError, OSError) as exc:
        meter.end()
        print(f"taskgate bench {args.scenario}: {exc}", file=sys.stderr)
        return 1
    runs = median_runs(repeats)
    console = Console()
    title = f"taskgate bench {args.scenario}" + (
        f" (median of {len(repeats)} runs)" if len(repeats) > 1 else ""
    )
    render_table(console, title, runs)
    exit_code = _warnings(runs)
    if args.json:
        parameters = {k: _plain(v) for k, v in vars(args).items() if k not in SECRET_PARAMETERS}
        if args.database_url:
            parameters["database_url"] = redact_url(args.database_url)
        body = document(
            args.scenario, parameters, target_description, machine_info(), runs, repeats, started
        )
        write_json(args.json, body)
        print(f"wrote {args.json}", file=sys.stderr)
    return exit_code


def _check_target_flags(args: argparse.Namespace) -> str | None:
    if args.spawn and args.url:
        return "give --url or --spawn, not both"
    if not args.spawn:
        args.url = args.url or os.environ.get("TASKGATE_URL")
        args.token = args.token or os.environ.get("TASKGATE_TOKEN")
    if not args.spawn and not args.url:
        return "give --url URL (and --token) for a running server, or --spawn"
    args.database_url = args.database_url or os.environ.get("TASKGATE_BENCH_DATABASE_URL")
    if args.database and "://" in args.database:
        return "--database takes a SQLite file path; give a PostgreSQL server as --database-url"
    if args.database_url and not args.spawn:
        return "--database-url is for --spawn (with --url, the server has its own database)"
    if args.database_url and args.database:
        return "give --database (SQLite) or --database-url (PostgreSQL), not both"
    if args.database_url and not args.database_url.startswith(("postgresql://", "postgres://")):
        return "--database-url takes a postgresql:// URL"
    if args.scenario == "backlog" and args.database_url:
        return "backlog fills a SQLite file directly: it runs on SQLite only"
    if args.scenario == "backlog" and not args.spawn:
        return "backlog writes the database file directly: it needs --spawn"
    if args.scenario == "backlog" and args.database:
        return "backlog makes fresh databases; leave out --database"
    if args.scenario == "submit-batch" and args.batch_size > 1000:
        return "--batch-size is at most 1000"
    if args.scenario == "e2e" and args.claim_batch > 100:
        return "--claim-batch is at most 100"
    return None


def _warnings(runs: list[dict[str, Any]]) -> int:
    """Say what makes figures suspect: failed requests, a saturated generator."""
    exit_code = 0
    for run in runs:
        failed = run.get("failed_requests") or 0
        if failed:
            print(f"warning: {failed} requests failed ({run.get('failures')})", file=sys.stderr)
            exit_code = 1
        cpu, processes = run.get("generator_cpu_percent"), run.get("generator_processes") or 1
        if isinstance(cpu, int | float) and cpu / processes > 80:
            print(
                f"warning: the load generator used {cpu:.0f} % of a core over {processes} "
                "process(es): it may be the bottleneck (try --generator-processes)",
                file=sys.stderr,
            )
    return exit_code


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    return value
