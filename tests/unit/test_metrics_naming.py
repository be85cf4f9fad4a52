"""taskgate's metric names and labels follow Prometheus conventions and are the ones
docs/operations.md describes; its alert rules pass promtool; queue gauges; the
multiprocess directory's lifecycle."""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from app.core.models import Priority, QueueDepth, Task
from app.core.models import TaskState as S
from app.metrics.instruments import Metrics
from app.metrics.multiprocess import fresh_metrics_dir, remove_metrics_dir
from tests.scrape import Scrape, promtool

OPERATIONS_DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"

NOW_MS = 1_767_225_600_000


def a_task(state: S, queue: str = "q") -> Task:
    return Task(
        id="01JTASK",
        queue=queue,
        type="t",
        payload_json="null",
        priority=Priority.normal,
        state=state,
        attempts=1,
        max_attempts=3,
        retry=None,
        lease_seconds=60,
        run_at_ms=NOW_MS,
        created_at_ms=NOW_MS,
        updated_at_ms=NOW_MS,
        started_at_ms=None,
        finished_at_ms=None,
        lease_token=None,
        lease_expires_at_ms=None,
        worker_id=None,
        cancel_requested=False,
        result_json=None,
        errors_json="[]",
        idempotency_key=None,
        tags=(),
    )


def everything_recorded() -> Scrape:
    metrics = Metrics.in_process()
    metrics.request_done("/v1/queues/{queue}/tasks", "POST", 201, 0.001)
    metrics.tasks_submitted("q", 2)
    metrics.claim_returned("q", 1, 0.2)
    metrics.claim_returned("q", 0, 20.0)
    metrics.tasks_claimed("q", 1)
    metrics.task_completed(a_task(S.succeeded))
    metrics.task_failed(a_task(S.queued))
    metrics.task_failed(a_task(S.dead))
    metrics.lease_expired(a_task(S.cancelled))
    metrics.task_cancel_requested(a_task(S.cancelled))
    metrics.delivery_done("q", "delivered", 0.05)
    depth = QueueDepth("q", False, 1, 2, 3, 4, NOW_MS - 1500)
    return Scrape(metrics.render([depth], NOW_MS).decode())


def test_names_and_label_names_follow_prometheus_conventions() -> None:
    scrape = everything_recorded()
    ours = {name: kind for name, kind in scrape.types.items() if name.startswith("taskgate_")}
    counters = {name for name, kind in ours.items() if kind == "counter"}
    histograms = {name for name, kind in ours.items() if kind == "histogram"}
    gauges = {name for name, kind in ours.items() if kind == "gauge"}
    assert counters == {
        "taskgate_http_requests",
        "taskgate_tasks_submitted",
        "taskgate_tasks_claimed",
        "taskgate_tasks_succeeded",
        "taskgate_tasks_failed",
        "taskgate_tasks_retried",
        "taskgate_tasks_dead",
        "taskgate_tasks_cancelled",
        "taskgate_lease_expiries",
        "taskgate_webhook_deliveries",
    }
    assert histograms == {
        "taskgate_http_request_duration_seconds",
        "taskgate_claim_wait_seconds",
        "taskgate_webhook_delivery_duration_seconds",
    }
    # The text format lists each counter's creation time as a gauge of its own.
    assert gauges - {f"{name}_created" for name in counters | histograms} == {
        "taskgate_queue_tasks",
        "taskgate_queue_oldest_due_age_seconds",
        "taskgate_queue_paused",
    }
    for family in text_string_to_metric_families(scrape.text):
        if not family.name.startswith("taskgate_") or family.name.endswith("_created"):
            continue
        for sample in family.samples:
            if family.type == "counter":
                assert sample.name == f"{family.name}_total"
            elif family.type == "histogram":
                assert sample.name.removeprefix(family.name) in ("_bucket", "_count", "_sum")
            # Bounded labels only: never a task id, a worker id or a raw path.
            assert set(sample.labels) <= {
                "route",
                "method",
                "status",
                "queue",
                "state",
                "outcome",
                "le",
            }


def test_each_event_lands_in_its_own_counter() -> None:
    scrape = everything_recorded()
    assert scrape.value("taskgate_tasks_submitted_total", queue="q") == 2
    assert scrape.value("taskgate_tasks_claimed_total", queue="q") == 2
    assert scrape.value("taskgate_tasks_succeeded_total", queue="q") == 1
    assert scrape.value("taskgate_tasks_failed_total", queue="q") == 2
    assert scrape.value("taskgate_tasks_retried_total", queue="q") == 1
    assert scrape.value("taskgate_tasks_dead_total", queue="q") == 1
    assert scrape.value("taskgate_lease_expiries_total", queue="q") == 1
    assert scrape.value("taskgate_tasks_cancelled_total", queue="q") == 2
    assert scrape.value("taskgate_webhook_deliveries_total", queue="q", outcome="delivered") == 1
    waits = "taskgate_claim_wait_seconds_bucket"
    assert scrape.value(waits, queue="q", outcome="tasks", le="0.25") == 1
    assert scrape.value(waits, queue="q", outcome="empty", le="15.0") == 0
    assert scrape.value(waits, queue="q", outcome="empty", le="20.0") == 1


def test_queue_gauges_come_from_the_depths_read_for_the_scrape() -> None:
    scrape = everything_recorded()
    states = ("due", "scheduled", "running", "dead")
    assert [scrape.value("taskgate_queue_tasks", queue="q", state=s) for s in states] == [
        1,
        2,
        3,
        4,
    ]
    assert scrape.value("taskgate_queue_oldest_due_age_seconds", queue="q") == 1.5
    assert scrape.value("taskgate_queue_paused", queue="q") == 0


def test_oldest_due_age_is_zero_unless_a_task_is_due() -> None:
    def depth(earliest: int | None) -> QueueDepth:
        return QueueDepth("q", False, 0, 0, 0, 0, earliest)

    assert depth(None).oldest_due_age_ms(NOW_MS) == 0
    assert depth(NOW_MS + 10).oldest_due_age_ms(NOW_MS) == 0
    assert depth(NOW_MS).oldest_due_age_ms(NOW_MS) == 0
    assert depth(NOW_MS - 250).oldest_due_age_ms(NOW_MS) == 250


def test_a_metrics_directory_is_fresh_private_and_removed() -> None:
    first, second = fresh_metrics_dir(), fresh_metrics_dir()
    try:
        assert first != second
        assert list(first.iterdir()) == []
        assert stat.S_IMODE(first.stat().st_mode) == 0o700
        assert first.name.startswith(f"taskgate-metrics-{os.getpid()}-")
        (first / "counter_1.db").write_bytes(b"")
    finally:
        remove_metrics_dir(first)
        remove_metrics_dir(second)
    assert not first.exists() and not second.exists()


def test_the_operations_doc_describes_every_metric() -> None:
    scrape = everything_recorded()
    exported = {
        name + ("_total" if kind == "counter" else "")
        for name, kind in scrape.types.items()
        if name.startswith("taskgate_") and not name.endswith("_created")
    }
    section = OPERATIONS_DOC.read_text().split("## Metrics", 1)[1]
    documented = set(re.findall(r"^\| `(taskgate_[a-z_]+)` \|", section, re.MULTILINE))
    assert documented == exported


def test_the_operations_doc_alert_rules_pass_promtool(tmp_path: Path) -> None:
    section = OPERATIONS_DOC.read_text().split("### Alerts", 1)[1]
    rules = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert rules is not None
    path = tmp_path / "taskgate.rules.yml"
    path.write_text(rules.group(1))
    checked = subprocess.run(
        [promtool(), "check", "rules", str(path)], capture_output=True, timeout=30, check=False
    )
    assert checked.returncode == 0, (checked.stdout + checked.stderr).decode()
    assert b"SUCCESS" in checked.stdout
