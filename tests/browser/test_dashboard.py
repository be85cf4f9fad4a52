"""The dashboard in a real headless chromium against a real server: sign-in, live
counts from the event stream, the task page, dead letters, pause, scopes, sign-out."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import IN_CI
from tests.e2e.harness import ServerProcess, mint_test_token, server_factory, wait_until

from .screenshots import png_size, take_screenshots
from .support import LIVE_TIMEOUT_MS, make_dead, sign_in, submit

if not IN_CI:
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
from playwright.sync_api import Browser, Page, expect

expect.set_options(timeout=LIVE_TIMEOUT_MS)


def read_token(server: ServerProcess) -> str:
    secret = server.database.parent / "taskgate.secret"
    return mint_test_token(secret, ("tasks:read",), subject="viewer")


def test_counts_follow_the_api_live_without_a_reload(page: Page, server: ServerProcess) -> None:
    sign_in(page, server.base_url, server.token)
    page.evaluate("window.sameDocument = true")  # gone if the page reloads
    row = page.locator("tr[data-queue='live-counts']")
    expect(row).to_have_count(0)

    with server.client() as http:
        submit(http, "live-counts")
        expect(row.locator("[data-count='due']")).to_have_text("1")
        for _ in range(3):
            submit(http, "live-counts")
        expect(row.locator("[data-count='due']")).to_have_text("4")
        (leased,) = http.post("/v1/queues/live-counts/claim", json={"worker_id": "counter"}).json()[
            "tasks"
        ]
        http.post(
            f"/v1/tasks/{leased['id']}/complete", json={"lease_token": leased["lease"]["token"]}
        )

    expect(row.locator("[data-count='due']")).to_have_text("3")
    expect(row.locator("[data-count='succeeded']")).to_have_text("1")
    # The completion reached the throughput chart through the event stream.
    expect(page.locator("#throughput")).to_contain_text("1 completed since")
    assert page.evaluate("window.sameDocument") is True


def test_the_task_page_shows_payload_state_and_then_the_result(
    page: Page, server: ServerProcess
) -> None:
    with server.client() as http:
        task = submit(http, "pages", payload={"to": "ada@example.com", "n": 7}, tags=["vip"])
    sign_in(page, server.base_url, server.token, "/dashboard/queues/pages")
    page.get_by_role("link", name=task["id"]).click()
    expect(page).to_have_url(re.compile(f"/dashboard/tasks/{task['id']}$"))
    page.locator("#main").wait_for(state="visible")
    expect(page.locator("#payload")).to_contain_text('"to": "ada@example.com"')
    expect(page.locator("#facts")).to_contain_text("queued")
    expect(page.locator("#facts")).to_contain_text("vip")

    with server.client() as http:
        (leased,) = http.post("/v1/queues/pages/claim", json={"worker_id": "w"}).json()["tasks"]
        http.post(
            f"/v1/tasks/{task['id']}/complete",
            json={"lease_token": leased["lease"]["token"], "result": {"sent": True}},
        )
    expect(page.locator("#facts .badge")).to_have_text("succeeded")
    expect(page.locator("#result")).to_contain_text('"sent": true')
    expect(page.locator("#timeline li")).to_have_count(3)


def test_a_dead_letter_is_redriven_from_its_page(page: Page, server: ServerProcess) -> None:
    with server.client() as http:
        dead = make_dead(http, "fragile", "mailbox full")
    sign_in(page, server.base_url, server.token, "/dashboard/queues/fragile/dead")
    row = page.locator(f"tr[data-task='{dead['id']}']")
    expect(row).to_contain_text("mailbox full")

    row.get_by_role("button", name=f"Redrive task {dead['id']}").click()
    expect(page.locator("#notice")).to_contain_text("queued again")
    expect(row).to_have_count(0)
    with server.client() as http:
        again = http.get(f"/v1/tasks/{dead['id']}").json()
    assert again["state"] == "queued"
    assert again["attempts"] == 0


def test_pausing_a_queue_from_the_overview_pauses_it_in_the_api(
    page: Page, server: ServerProcess
) -> None:
    with server.client() as http:
        submit(http, "pausable")
        sign_in(page, server.base_url, server.token)
        page.get_by_role("button", name="Pause queue pausable").click()
        expect(page.get_by_role("button", name="Resume queue pausable")).to_be_visible()
        assert http.get("/v1/queues/pausable").json()["paused"] is True
        page.get_by_role("button", name="Resume queue pausable").click()
        wait_until(lambda: not http.get("/v1/queues/pausable").json()["paused"], "the resume")


def test_a_token_without_queues_admin_is_told_it_may_not_pause(
    page: Page, server: ServerProcess
) -> None:
    with server.client() as http:
        submit(http, "guarded")
    sign_in(page, server.base_url, read_token(server))
    expect(page.locator("#who")).to_contain_text("viewer (tasks:read)")
    page.get_by_role("button", name="Pause queue guarded").click()
    notice = page.get_by_role("alert").filter(has_text="Not allowed")
    expect(notice).to_contain_text("Not allowed to pause queue guarded")
    expect(notice).to_contain_text("queues:admin")
    with server.client() as http:
        assert http.get("/v1/queues/guarded").json()["paused"] is False


def test_a_refused_token_is_not_kept_and_sign_out_forgets_the_token(
    page: Page, server: ServerProcess
) -> None:
    page.goto(server.base_url + "/dashboard")
    page.get_by_label("API token").fill("not-a-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#sign-in-error")).to_contain_text("did not accept this token")
    assert page.evaluate("sessionStorage.length") == 0

    token = server.token
    sign_in(page, server.base_url, token)
    assert page.evaluate("sessionStorage.getItem('taskgate.token')") == token
    assert page.evaluate("localStorage.length") == 0
    assert page.context.cookies() == []

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("API token")).to_be_visible()
    expect(page.locator("#main")).to_be_hidden()
    assert page.evaluate("sessionStorage.getItem('taskgate.token')") is None
    page.reload()
    expect(page.get_by_label("API token")).to_be_visible()


def test_the_stream_parser_handles_frames_split_anywhere(page: Page, server: ServerProcess) -> None:
    page.goto(server.base_url + "/dashboard")
    frames = page.evaluate(
        """async () => {
          const { EventStreamParser } = await import('/dashboard/static/events.js');
          const seen = [];
          const retries = [];
          const parser = new EventStreamParser((f) => seen.push(f), (ms) => retries.push(ms));
          const text = 'retry: 1000\\r\\n\\r\\n: keep-alive\\n\\nid: 7\\r\\n' +
            'event: task\\r\\ndata: {"a":\\ndata: 1}\\r\\n\\r\\n' +
            'id: 8\\nevent: reset\\ndata: x\\n\\nid: 9\\ndata: cut';
          for (const ch of text) parser.push(ch);
          return { seen, retries };
        }"""
    )
    assert frames["retries"] == [1000]
    assert frames["seen"] == [
        {"event": "task", "data": '{"a":\n1}', "id": "7"},
        {"event": "reset", "data": "x", "id": "8"},
    ]


def test_screenshots_of_the_main_pages(browser: Browser, tmp_path: Path) -> None:
    (tmp_path / "server").mkdir()
    with server_factory(tmp_path / "server") as start:
        written = take_screenshots(browser, start(), tmp_path / "img")
    sizes = {path.name: png_size(path) for path in written}
    assert sizes == {
        "dashboard-overview.png": (1280, 800),
        "dashboard-queue.png": (1280, 800),
        "dashboard-task.png": (1280, 800),
        "dashboard-dead.png": (1280, 800),
        "dashboard-workers.png": (1280, 800),
        "dashboard-schedules.png": (1280, 800),
        "dashboard-phone.png": (390, 844),
    }


def test_a_token_refused_mid_session_sends_back_to_sign_in(
    page: Page, server: ServerProcess
) -> None:
    with server.client() as http:
        submit(http, "expiring")
    sign_in(page, server.base_url, server.token)
    # As if the token expired: the next call is answered 401.
    page.evaluate("sessionStorage.setItem('taskgate.token', 'expired.token.value')")
    page.get_by_role("button", name="Pause queue expiring").click()
    expect(page.locator("#sign-in-error")).to_contain_text("Your token was not accepted")
    expect(page.get_by_label("API token")).to_be_visible()
    expect(page.locator("#main")).to_be_hidden()
    assert page.evaluate("sessionStorage.getItem('taskgate.token')") is None
    with server.client() as http:
        assert http.get("/v1/queues/expiring").json()["paused"] is False
