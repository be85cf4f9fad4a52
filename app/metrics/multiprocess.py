"""prometheus_client's multiprocess mode, for gunicorn's several workers: each worker
writes its values to files in one directory, made fresh for every server start, and a
scrape (answered by any worker) adds up the files of every worker, dead or alive."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from prometheus_client import multiprocess, values

# prometheus_client finds the directory only through this variable (when a value is made).
MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


def fresh_metrics_dir() -> Path:
    """A new empty directory (mode 0700) for one server start, in the temp directory; its
    name carries the pid of the process that made it (the gunicorn master)."""
    return Path(tempfile.mkdtemp(prefix=f"taskgate-metrics-{os.getpid()}-"))


def remove_metrics_dir(directory: Path) -> None:
    """Delete a server start's directory when the server stops."""
    shutil.rmtree(directory, ignore_errors=True)


def mark_worker_dead(directory: Path, pid: int) -> None:
    """gunicorn's `child_exit`: forget the dead worker's live gauges. Its counters and
    histograms stay in the directory, so totals never go down when a worker is replaced."""
    multiprocess.mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]


def write_values_to(directory: Path) -> None:
    """Make the metrics this process creates from now on live in files under `directory`.

    Process-wide by nature: prometheus_client picks its value class once, when it is
    imported, from the environment. A worker forked from a master that imported it
    without the variable would keep in-memory values, so the class is swapped here, in
    the worker, before the app makes its first metric. Call it once per process.
    """
    os.environ[MULTIPROC_DIR_ENV] = str(directory)
    if not getattr(values.ValueClass, "_multiprocess", False):
        values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
