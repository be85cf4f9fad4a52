"""Screenshots of the dashboard's main pages for the docs, from a real server with a
small made-up workload. `python -m tests.browser.screenshots` writes docs/img/; the
browser tests call `take_screenshots` into a temporary folder.
"""

from __future__ import annotations

import struct
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from tests.e2e.harness import REPO_ROOT, ServerProcess, server_factory

from .support import DESKTOP, PHONE, chromium, make_dead, sign_in, submit

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

DOCS_IMG = REPO_ROOT / "docs" / "img"
# Each page, and what shows that its data arrived.
PAGES = {
    "overview": "tr[data-queue='flaky']",
    "queue": "#tasks tbody tr",
    "task": "#timeline li",
    "dead": "#dead tbody tr",
    "workers": "tr[data-worker='worker-1']",
    "schedules": "tr[data-schedule='nightly-report']",
}


def _work(http: httpx.Client, queue: str, worker: str, count: int) -> None:
    """Claim and complete `count` tasks of `queue` as `worker`."""
    claimed = http.post(
        f"/v1/queues/{queue}/claim",
        json={"worker_id": worker, "max_tasks": count, "worker_info": {"host": "mail-1"}},
    ).json()["tasks"]
    for task in claimed:
        http.post(
            f"/v1/tasks/{task['id']}/complete",
            json={"lease_token": task["lease"]["token"], "result": {"sent": True}},
        )


def populate(http: httpx.Client) -> dict[str, str]:
    """A few queues in every state; returns the ids the screenshots open."""
    shown = submit(
        http,
        "emails",
        type="email.send",
        payload={"to": "ada@example.com", "template": "welcome", "locale": "en-GB"},
        tags=["signup", "vip"],
    )
    for n in range(14):
        submit(http, "emails", type="email.send", payload={"n": n}, tags=["newsletter"])
    for month in range(1, 4):
        submit(http, "reports", type="report.build", payload={"month": month}, delay_seconds=3600)
    for n in range(3):
        submit(http, "thumbnails", type="image.resize", payload={"n": n})
    http.post("/v1/queues/thumbnails/pause", json={"reason": "storage migration"})
    make_dead(http, "flaky", "550 no such recipient", type="email.send", payload={"to": "x@y.z"})
    make_dead(http, "flaky", "timed out after 30 s", type="webhook.call", payload={"id": 9})
    http.post("/v1/queues/emails/claim", json={"worker_id": "worker-2", "max_tasks": 2})
    for schedule in (
        {
            "id": "nightly-report",
            "cron": "30 2 * * *",
            "timezone": "Europe/Berlin",
            "queue": "reports",
            "task": {"type": "report.build", "payload": {"kind": "daily"}},
        },
        {
            "id": "heartbeat-probe",
            "cron": "*/15 * * * * *",
            "queue": "probes",
            "task": {"type": "probe.ping"},
            "missed": "skip",
        },
    ):
        created = http.post("/v1/schedules", json=schedule)
        assert created.status_code == 201, created.text
    http.patch("/v1/schedules/heartbeat-probe", json={"paused": True})
    return {"task": shown["id"]}


def png_size(path: Path) -> tuple[int, int]:
    width, height = struct.unpack(">II", path.read_bytes()[16:24])
    return width, height


def take_screenshots(browser: Browser, server: ServerProcess, out_dir: Path) -> list[Path]:
    """PNGs of the main pages at 1280 x 800 and of the overview at 390 x 844, into `out_dir`."""
    from playwright.sync_api import expect

    out_dir.mkdir(parents=True, exist_ok=True)
    token = server.token
    context = browser.new_context(viewport=DESKTOP)  # type: ignore[arg-type]
    page: Page = context.new_page()
    sign_in(page, server.base_url, token)
    with server.client() as http:
        ids = populate(http)
        # Completions while the dashboard is open feed its throughput chart.
        _work(http, "emails", "worker-1", 6)
    page.locator("tr[data-queue='flaky']").wait_for()
    page.get_by_text("6 completed since").wait_for()
    urls = {
        "overview": "/dashboard",
        "queue": "/dashboard/queues/emails",
        "task": f"/dashboard/tasks/{ids['task']}",
        "dead": "/dashboard/queues/flaky/dead",
        "workers": "/dashboard/workers",
        "schedules": "/dashboard/schedules",
    }
    written = []
    for name, loaded in PAGES.items():
        if name != "overview":
            page.goto(server.base_url + urls[name])
        page.locator(loaded).first.wait_for()
        expect(page.locator("#live-state")).to_have_text("live")
        path = out_dir / f"dashboard-{name}.png"
        page.screenshot(path=str(path))
        written.append(path)
    page.set_viewport_size(PHONE)  # type: ignore[arg-type]
    page.goto(server.base_url + urls["overview"])
    page.locator("tr[data-queue='flaky']").wait_for()
    phone = out_dir / "dashboard-phone.png"
    page.screenshot(path=str(phone))
    written.append(phone)
    context.close()
    return written


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch, server_factory(Path(scratch)) as start:
        server = start()
        with chromium() as browser:
            for path in take_screenshots(browser, server, DOCS_IMG):
                print(path.relative_to(REPO_ROOT), "x".join(map(str, png_size(path))))


if __name__ == "__main__":
    main()
