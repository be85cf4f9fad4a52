"""Load generator processes: start them together, watch their progress, collect reports.

Every generator runs in a child process of its own (multiprocessing, `spawn` start
method: nothing of the parent's threads or event loop is inherited), with uvloop when
it is installed. Children that send requests wait at a barrier after connecting, so the
measured window starts when all of them are ready; each reports the CPU time it used
inside the window (`resource.getrusage`), so the report can tell whether the generator
was the bottleneck.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import queue
import random
import resource
import sys
import time
import traceback
from array import array
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from multiprocessing.sharedctypes import SynchronizedArray
from typing import Any, TypeVar

from app.bench.wire import Connection, Endpoint, WireError

T = TypeVar("T")

SPAWN = multiprocessing.get_context("spawn")
BARRIER_TIMEOUT_S = 120.0
REPORT_TIMEOUT_S = 120.0
ERROR_PAUSE_S = 0.05

Report = dict[str, Any]


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run `coroutine` on uvloop when installed (it is with uvicorn[standard]), else asyncio."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def cpu_now() -> float:
    """User + system CPU seconds of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True, slots=True)
class RequestLoad:
    """The same request, sent again and again by `connections` connections of one process."""

    url: str
    token: str | None
    method: str
    path: str
    body: bytes | None
    expect_status: int
    tasks_per_request: int
    connections: int
    requests: int
    duration_s: float | None = None
    interval_s: float | None = None
    """Paced mode: each connection sends once per interval (an open loop, like wrk2)."""


class GeneratorError(Exception):
    """A generator process failed or never reported (the message carries its traceback)."""


class ProcessGroup:
    """Child processes of one kind, with a progress counter per child and a report queue."""

    def __init__(self, name: str, size: int, *, barrier: bool = True) -> None:
        self.name = name
        self.size = size
        self.progress: SynchronizedArray[int] = SPAWN.Array("q", size)
        self.stop_event = SPAWN.Event()
        self.barrier = SPAWN.Barrier(size + 1) if barrier else None
        self.reports: multiprocessing.Queue[Report] = SPAWN.Queue()
        self.processes: list[multiprocessing.process.BaseProcess] = []

    def start(self, target: Callable[..., Report], args: Sequence[tuple[Any, ...]]) -> None:
        """Start one child per entry of `args`: `target(*args[i], slot, group handles…)`."""
        for slot, child_args in enumerate(args):
            process = SPAWN.Process(
                target=_child_main,
                args=(target, child_args, slot, self.progress, self.stop_event, self.barrier),
                kwargs={"reports": self.reports},
                name=f"taskgate-bench-{self.name}-{slot}",
                daemon=True,
            )
            process.start()
            self.processes.append(process)

    def release(self) -> None:
        """Let the children past the start barrier (once all of them have connected).

        Raises:
            GeneratorError: a child died or did not get ready in time.
        """
        assert self.barrier is not None
        try:
            self.barrier.wait(BARRIER_TIMEOUT_S)
        except Exception as exc:  # threading.BrokenBarrierError, from a timeout or abort
            self.terminate()
            raise GeneratorError(
                f"{self.name}: a process did not get ready: {self._failure()}"
            ) from exc

    def completed(self) -> int:
        """What the children have counted so far (requests or tasks, by kind)."""
        return int(sum(self.progress[:]))

    def alive(self) -> bool:
        return any(process.is_alive() for process in self.processes)

    def stop(self) -> None:
        self.stop_event.set()

    def collect(self, timeout_s: float = REPORT_TIMEOUT_S) -> list[Report]:
        """One report per child, once they have all ended. Raises: GeneratorError."""
        reports: list[Report] = []
        deadline = time.monotonic() + timeout_s
        while len(reports) < len(self.processes):
            try:
                report = self.reports.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                self.terminate()
                raise GeneratorError(f"{self.name}: {self._failure()}") from None
            if "error" in report:
                self.terminate()
                raise GeneratorError(f"{self.name} process {report['slot']}: {report['error']}")
            reports.append(report)
        for process in self.processes:
            process.join(timeout_s)
        return sorted(reports, key=lambda report: int(report["slot"]))

    def terminate(self) -> None:
        for process in self.processes:
            if process.is_alive():
                process.terminate()
        for process in self.processes:
            process.join(5)

    def _failure(self) -> str:
        codes = [p.exitcode for p in self.processes if p.exitcode not in (None, 0)]
        return f"exit codes {codes}" if codes else "no report in time"


def _child_main(
    target: Callable[..., Report],
    child_args: tuple[Any, ...],
    slot: int,
    progress: SynchronizedArray[int],
    stop_event: Any,
    barrier: Any,
    *,
    reports: multiprocessing.Queue[Report],
) -> None:
    try:
        report = target(*child_args, slot=slot, progress=progress, stop=stop_event, barrier=barrier)
        report["slot"] = slot
    except BaseException:  # any failure must reach the parent, which would wait otherwise
        if barrier is not None:
            barrier.abort()
        report = {"slot": slot, "error": traceback.format_exc(limit=8)}
    reports.put(report)
    sys.stdout.flush()


def generate_requests(
    load: RequestLoad,
    *,
    slot: int,
    progress: SynchronizedArray[int],
    stop: Any,
    barrier: Any,
) -> Report:
    """Child entry: send `load` until its count (or duration) is used up; report figures."""
    return run_async(_generate(load, slot, progress, barrier))


async def _generate(
    load: RequestLoad, slot: int, progress: SynchronizedArray[int], barrier: Any
) -> Report:
    endpoint = Endpoint.from_url(load.url, load.token)
    connections = [Connection(endpoint) for _ in range(load.connections)]
    await asyncio.gather(*(connection.open() for connection in connections))
    request = connections[0].encode(load.method, load.path, load.body)
    latencies_ms = array("d")
    failures: Counter[str] = Counter()
    budget = load.requests
    ok_requests = 0
    barrier.wait(BARRIER_TIMEOUT_S)
    cpu_start, started = cpu_now(), time.monotonic()
    deadline = started + load.duration_s if load.duration_s else None

    async def send_until_done(connection: Connection) -> None:
        nonlocal budget, ok_requests
        clock = time.perf_counter
        # Paced: a random phase per connection, then one request per interval. Latency is
        # counted from when the request was due, so a server that falls behind is charged
        # for the wait it causes (no coordinated omission).
        due = clock() + random.uniform(0, load.interval_s or 0)
        while budget > 0 and (deadline is None or time.monotonic() < deadline):
            budget -= 1
            if load.interval_s:
                if (early := due - clock()) > 0:
                    await asyncio.sleep(early)
                sent = due
                due += load.interval_s
            else:
                sent = clock()
            try:
                response = await connection.send(request)
            except WireError as exc:
                failures[f"connection: {exc}"[:80]] += 1
                await asyncio.sleep(ERROR_PAUSE_S)
                continue
            latencies_ms.append((clock() - sent) * 1000)
            if response.status == load.expect_status:
                ok_requests += 1
                progress[slot] += load.tasks_per_request
            else:
                failures[f"HTTP {response.status}"] += 1

    await asyncio.gather(*(send_until_done(connection) for connection in connections))
    finished = time.monotonic()
    cpu_used = cpu_now() - cpu_start
    for connection in connections:
        connection.close()
    return {
        "ok_requests": ok_requests,
        "tasks": ok_requests * load.tasks_per_request,
        "failures": dict(failures),
        "latencies_ms": latencies_ms,
        "started": started,
        "finished": finished,
        "cpu_seconds": cpu_used,
    }


def split(total: int, parts: int) -> list[int]:
    """`total` shared out over `parts` as evenly as integers allow."""
    base, extra = divmod(total, parts)
    return [base + (1 if index < extra else 0) for index in range(parts)]
