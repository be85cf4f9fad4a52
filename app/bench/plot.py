"""Throughput and p99 latency against concurrency, from `taskgate bench submit --json` files.

`taskgate bench plot a.json b.json -o docs/bench-throughput.png`, or
`python -m app.bench.plot a.json -o out.png`. Each file becomes one line per panel,
named by its server (processes, durability). Needs matplotlib: `pip install
'taskgate[bench]'`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


class PlotError(Exception):
    """The results cannot be plotted (no submit runs, or matplotlib is missing)."""


def series(document: dict[str, Any]) -> tuple[str, list[tuple[int, float, float]]]:
    """A file's name for the legend and its (concurrency, tasks/s, p99 ms) points."""
    if document.get("scenario") != "submit":
        raise PlotError(f"expected results of `bench submit`, got {document.get('scenario')!r}")
    target = document.get("target", {})
    if target.get("kind") == "spawned":
        workers = target.get("workers", "?")
        processes = "1 process" if workers == 1 else f"{workers} processes"
        name = f"{processes}, durability {target.get('durability', '?')}"
    else:
        name = str(target.get("url", "server"))
    points = sorted(
        (int(run["concurrency"]), float(run["tasks_per_second"]), float(run["latency_p99_ms"]))
        for run in document["runs"]
    )
    return name, points


def plot_files(paths: Sequence[Path], output: Path, *, title: str) -> None:
    """Draw every file's submit runs into one PNG. Raises: PlotError."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot, ticker
    except ImportError as exc:
        raise PlotError("plotting needs matplotlib: pip install 'taskgate[bench]'") from exc
    figure, (throughput, latency) = pyplot.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    ticks: set[int] = set()
    for path in paths:
        name, points = series(json.loads(path.read_text()))
        concurrency = [point[0] for point in points]
        ticks.update(concurrency)
        throughput.plot(concurrency, [point[1] for point in points], marker="o", label=name)
        latency.plot(concurrency, [point[2] for point in points], marker="o", label=name)
    for axes, label in ((throughput, "tasks/s"), (latency, "p99 latency (ms)")):
        axes.set_xscale("log", base=2)
        axes.set_xticks(sorted(ticks))
        axes.xaxis.set_major_formatter(ticker.ScalarFormatter())
        axes.xaxis.set_minor_locator(ticker.NullLocator())
        axes.set_xlabel("concurrent connections")
        axes.set_ylabel(label)
        axes.set_ylim(bottom=0)
        axes.grid(True, alpha=0.3)
    throughput.set_title("submit throughput")
    latency.set_title("submit p99 latency")
    throughput.legend(fontsize="small")
    figure.suptitle(title)
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=120)
    pyplot.close(figure)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.bench.plot", description=__doc__)
    parser.add_argument("results", type=Path, nargs="+")
    parser.add_argument("-o", "--output", type=Path, default=Path("bench-throughput.png"))
    parser.add_argument("--title", default="taskgate submit: throughput and p99 latency")
    args = parser.parse_args(argv)
    try:
        plot_files(args.results, args.output, title=args.title)
    except (PlotError, OSError, ValueError, KeyError) as exc:
        print(f"plot: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
