"""The bench's outputs: a progress bar and a table (rich), and the JSON document."""

from __future__ import annotations

import datetime
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from app.bench.stats import Figures

FORMAT_VERSION = 1
# Figures whose names end like this are shown with units in the table.
UNITS = (("_ms", " (ms)"), ("_per_second", "/s"), ("_percent", " (%)"), ("_mib", " (MiB)"))


class RichMeter:
    """A rich progress bar for the phase under way (on stderr, so stdout stays the table)."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._task: TaskID | None = None

    def begin(self, description: str, total: int | None) -> None:
        self.end()
        self._progress.start()
        self._task = self._progress.add_task(description, total=total)

    def advance_to(self, completed: int) -> None:
        if self._task is not None:
            self._progress.update(self._task, completed=completed)

    def end(self) -> None:
        if self._task is not None:
            self._progress.remove_task(self._task)
            self._task = None
        self._progress.stop()


def render_table(console: Console, title: str, runs: Sequence[Figures]) -> None:
    """One column per run (label), one row per figure, in the order they were produced."""
    table = Table(title=title, title_justify="left")
    table.add_column("figure")
    for run in runs:
        table.add_column(str(run.get("label", "")), justify="right")
    names: list[str] = []
    for run in runs:
        names.extend(name for name in run if name != "label" and name not in names)
    for name in names:
        table.add_row(_title(name), *(_cell(run.get(name)) for run in runs))
    console.print(table)


def _title(name: str) -> str:
    for suffix, unit in UNITS:
        if name.endswith(suffix):
            return name[: -len(suffix)].replace("_", " ") + unit
    return name.replace("_", " ")


def _cell(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 100 else f"{value:,.3g}"
    return str(value)


def document(
    scenario: str,
    parameters: dict[str, Any],
    target: dict[str, Any],
    machine: dict[str, Any],
    runs: Sequence[Figures],
    repeats: Sequence[Sequence[Figures]],
    started: datetime.datetime,
) -> dict[str, Any]:
    """The JSON written by `--json`: every figure, the parameters and the machine."""
    return {
        "format": f"taskgate-bench/{FORMAT_VERSION}",
        "scenario": scenario,
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "parameters": parameters,
        "target": target,
        "machine": machine,
        "runs": list(runs),
        "repeats": [list(repeat) for repeat in repeats],
    }


def write_json(path: Path, body: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(body, indent=2, ensure_ascii=False) + "\n")
