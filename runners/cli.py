"""The `runner` command (`taskgate runner …` and `python -m runners …`): load a Runner, run it.

Flags fall back to environment variables: `--url` to TASKGATE_URL.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from .runner import Runner

DEFAULT_URL = "http://127.0.0.1:8000"


class RunnerNotFound(ValueError):
    """The MODULE:ATTRIBUTE target does not name a `Runner`."""


def add_runner_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the runner's target and flags to `parser`."""
    parser.add_argument(
        "target", metavar="MODULE:ATTRIBUTE", help="the Runner to start, e.g. myapp.tasks:runner"
    )
    parser.add_argument(
        "--queue",
        action="append",
        dest="queues",
        metavar="NAME",
        help="a queue to consume (repeat for several; default: the runner's own queues)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        metavar="N",
        help="tasks run at once (default: the runner's own setting)",
    )
    parser.add_argument(
        "--url",
        metavar="URL",
        help=f"the taskgate server (default: $TASKGATE_URL, the runner's own, then {DEFAULT_URL})",
    )
    parser.add_argument(
        "--worker-id",
        metavar="ID",
        help="the id the runner claims under (default: $TASKGATE_WORKER_ID, else host:pid:random)",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging level (default: INFO)",
    )


def load_runner(target: str) -> Runner:
    """Import `MODULE:ATTRIBUTE` (the working directory is importable) and return the Runner.

    Raises:
        RunnerNotFound: a malformed target, a missing module or attribute, or not a Runner.
    """
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise RunnerNotFound(f"{target!r} is not MODULE:ATTRIBUTE")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise RunnerNotFound(f"cannot import {module_name!r}: {exc}") from exc
    runner = getattr(module, attribute, None)
    if not isinstance(runner, Runner):
        raise RunnerNotFound(f"{target} is {type(runner).__name__}, not a runners.Runner")
    return runner


def run_from_args(args: argparse.Namespace) -> int:
    """Load the runner named by `args`, apply the flags, run until SIGTERM/SIGINT; exit code."""
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        runner = load_runner(args.target)
    except RunnerNotFound as exc:
        print(f"taskgate runner: {exc}", file=sys.stderr)
        return 2
    if args.queues:
        runner.queues = tuple(args.queues)
    if args.concurrency is not None:
        if args.concurrency < 1:
            print("taskgate runner: --concurrency must be at least 1", file=sys.stderr)
            return 2
        runner.concurrency = args.concurrency
    runner.base_url = args.url or os.environ.get("TASKGATE_URL") or runner.base_url or DEFAULT_URL
    worker_id = args.worker_id or os.environ.get("TASKGATE_WORKER_ID")
    if worker_id:
        runner.worker_id = worker_id
    if not runner.queues:
        print("taskgate runner: no queue (give --queue NAME)", file=sys.stderr)
        return 2
    runner.run_forever()
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m runners MODULE:ATTRIBUTE [flags]`."""
    parser = argparse.ArgumentParser(
        prog="python -m runners", description="Run a taskgate Runner until SIGTERM or SIGINT."
    )
    add_runner_arguments(parser)
    return run_from_args(parser.parse_args(argv))
