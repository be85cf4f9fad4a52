"""What the benchmark ran on, and what the server processes used (Linux /proc)."""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app import __version__

PROC = Path("/proc")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
LISTEN_STATE = "0A"
ESTABLISHED_STATE = "01"


def machine_info() -> dict[str, Any]:
    """CPU model, cores, memory, OS, Python, the SQLite versions, taskgate and its commit."""
    return {
        "cpu_model": _cpu_model(),
        "cpu_cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "sqlite_server": _apsw_sqlite_version(),
        "sqlite_stdlib": sqlite3.sqlite_version,
        "taskgate": __version__,
        "git_commit": _git_commit(),
    }


def _cpu_model() -> str | None:
    try:
        for line in (PROC / "cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _memory_gib() -> float | None:
    try:
        for line in (PROC / "meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def _apsw_sqlite_version() -> str | None:
    try:
        import apsw
    except ImportError:
        return None
    version: str = apsw.sqlite_lib_version()
    return version


def _git_commit() -> str | None:
    """The checkout's commit (with `+dirty` for local changes), when run from a checkout."""
    root = Path(__file__).resolve().parents[2]
    git = shutil.which("git")
    if git is None or not (root / ".git").exists():
        return None
    try:
        commit = subprocess.run(  # noqa: S603 - git, read-only, fixed arguments
            [git, "-C", str(root), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(  # noqa: S603 - git, read-only, fixed arguments
            [git, "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}+dirty" if dirty else commit


def process_tree(root_pid: int) -> list[int]:
    """`root_pid` and its descendants (a gunicorn master and its workers), live ones only."""
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        stat = _stat_fields(int(entry.name))
        if stat is not None and stat[0] not in ("Z", "X"):
            children.setdefault(int(stat[1]), []).append(int(entry.name))
    tree, pending = [], [root_pid]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children.get(pid, []))
    return sorted(tree)


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat after the command name: state, ppid, …, utime (index 11), stime (12)."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time that process `pid` has used so far (0 once it is gone)."""
    stat = _stat_fields(pid)
    if stat is None:
        return 0.0
    return (int(stat[11]) + int(stat[12])) / CLOCK_TICKS


def tree_cpu_seconds(root_pid: int) -> float:
    """CPU used by `root_pid`, its live descendants, and the children it has reaped (a
    PostgreSQL postmaster reaps the backends of closed connections)."""
    stat = _stat_fields(root_pid)
    if stat is None:
        return 0.0
    reaped = (int(stat[13]) + int(stat[14])) / CLOCK_TICKS
    return reaped + sum(cpu_seconds(pid) for pid in process_tree(root_pid))


@dataclass(frozen=True, slots=True)
class Memory:
    """Resident memory of one process now and at its peak, in MiB."""

    pid: int
    rss_mib: float
    peak_rss_mib: float


def memory(pid: int) -> Memory | None:
    """VmRSS and VmHWM from /proc/PID/status, or None when the process is gone."""
    try:
        lines = (PROC / str(pid) / "status").read_text().splitlines()
    except OSError:
        return None
    values = {}
    for line in lines:
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0]) / 1024
    if "VmRSS" not in values:
        return None
    return Memory(pid, round(values["VmRSS"], 1), round(values.get("VmHWM", 0.0), 1))


def serving_pid(client_port: int, server_port: int, pids: list[int]) -> int | None:
    """Which of `pids` holds the server end of the local TCP connection from `client_port`.

    With several server processes behind one listening socket, the kernel decides which
    one accepts a connection; this finds it from /proc/net/tcp and the processes' fds.
    """
    inode = _socket_inode(server_port, client_port)
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for pid in pids:
        fd_dir = PROC / str(pid) / "fd"
        try:
            descriptors = list(fd_dir.iterdir())
        except OSError:
            continue
        for descriptor in descriptors:
            try:
                if os.readlink(descriptor) == target:
                    return pid
            except OSError:
                continue
    return None


def connections_by_process(server_port: int, pids: list[int]) -> dict[int, int]:
    """How many established TCP connections to `server_port` each of `pids` holds."""
    targets = {f"socket:[{inode}]" for inode in _established_inodes(server_port)}
    counts: dict[int, int] = {}
    for pid in pids:
        try:
            descriptors = list((PROC / str(pid) / "fd").iterdir())
        except OSError:
            continue
        held = 0
        for descriptor in descriptors:
            with contextlib.suppress(OSError):
                held += os.readlink(descriptor) in targets
        counts[pid] = held
    return counts


def _established_inodes(local_port: int) -> set[str]:
    inodes = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (PROC / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if (
                fields[3] == ESTABLISHED_STATE
                and int(fields[1].rsplit(":", 1)[1], 16) == local_port
            ):
                inodes.add(fields[9])
    return inodes


def _socket_inode(local_port: int, remote_port: int) -> str | None:
    for table in ("tcp", "tcp6"):
        try:
            lines = (PROC / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
            if state == LISTEN_STATE:
                continue
            if int(local.rsplit(":", 1)[1], 16) == local_port and (
                int(remote.rsplit(":", 1)[1], 16) == remote_port
            ):
                return inode
    return None
