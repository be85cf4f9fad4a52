"""The dashboard's actions and lists in a real headless chromium against a real server:
purge, redrive of selected dead letters, cancel, filters, search, paging, schedules."""

from __future__ import annotations

import re

import pytest

from tests.conftest import IN_CI
from tests.e2e.harness import ServerProcess

from .support import LIVE_TIMEOUT_MS, make_dead, sign_in, submit

if not IN_CI:
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
from playwright.sync_api import Dialog, Page, expect

expect.set_options(timeout=LIVE_TIMEOUT_MS)


def accept_dialogs(page: Page, seen: list[str]) -> None:
    """Answer every confirm() with OK, keeping its question."""

    def accept(dialog: Dialog) -> None:
        seen.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)


def test_purge_deletes_every_dead_task_after_a_confirm(page: Page, server: ServerProcess) -> None:
    with server.client() as http:
        dead = [make_dead(http, "purgeable", f"error {n}") for n in range(3)]
        submit(http, "purgeable")  # a live task: purge leaves it alone
    sign_in(page, server.base_url, server.token, "/dashboard/queues/purgeable/dead")
    expect(page.locator("#dead tbody tr")).to_have_count(3)

    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Purge all").click()
    expect(page.locator("#dead tbody tr")).to_have_count(3)

    questions: list[str] = []
    accept_dialogs(page, questions)
    page.get_by_role("button", name="Purge all").click()
    expect(page.locator("#notice")).to_contain_text("Purged 3 dead tasks")
    expect(page.locator("#dead tbody tr")).to_have_count(0)
    expect(page.locator("#empty")).to_be_visible()
    assert questions == ["Delete every dead task of purgeable? This cannot be undone."]
    with server.client() as http:
        for task in dead:
            assert http.get(f"/v1/tasks/{task['id']}").status_code == 404
        assert http.get("/v1/queues/purgeable").json()["counts"]["due"] == 1


def test_only_the_selected_dead_letters_are_redriven(page: Page, server: ServerProcess) -> None:
    with server.client() as http:
        first, second, third = (make_dead(http, "picky", f"error {n}") for n in range(3))
    sign_in(page, server.base_url, server.token, "/dashboard/queues/picky/dead")
    button = page.locator("#redrive-selected")
    expect(button).to_be_disabled()
    page.get_by_label(f"Select task {first['id']}").check()
    page.get_by_label(f"Select task {third['id']}").check()
    expect(button).to_have_text("Redrive selected (2)")
    expect(page.get_by_label("Select every dead task on this page")).to_have_js_property(
        "indeterminate", True
    )
    button.click()
    expect(page.locator("#notice")).to_contain_text("Redrove 2 of the 2 selected tasks")
    expect(page.locator("#dead tbody tr")).to_have_count(1)
    expect(page.locator(f"tr[data-task='{second['id']}']")).to_have_count(1)
    expect(button).to_be_disabled()
    with server.client() as http:
        states = {
            t["id"]: http.get(f"/v1/tasks/{t['id']}").json()["state"]
            for t in (first, second, third)
        }
    assert states == {first["id"]: "queued", second["id"]: "dead", third["id"]: "queued"}

    page.get_by_label("Select every dead task on this page").check()
    expect(button).to_have_text("Redrive selected (1)")


def test_a_queued_task_is_cancelled_from_its_page(page: Page, server: ServerProcess) -> None:
    with server.client() as http:
        task = submit(http, "cancellable")
    questions: list[str] = []
    sign_in(page, server.base_url, server.token, f"/dashboard/tasks/{task['id']}")
    accept_dialogs(page, questions)
    page.get_by_role("button", name="Cancel task").click()
    expect(page.locator("#notice")).to_contain_text(f"Task {task['id']} is cancelled.")
    expect(page.locator("#facts .badge")).to_have_text("cancelled")
    expect(page.get_by_role("button", name="Cancel task")).to_be_hidden()
    assert questions == ["Cancel this task?"]
    with server.client() as http:
        assert http.get(f"/v1/tasks/{task['id']}").json()["state"] == "cancelled"


def test_a_running_task_gets_a_cancel_request_its_worker_sees(
    page: Page, server: ServerProcess
) -> None:
    with server.client() as http:
        task = submit(http, "stoppable")
        (leased,) = http.post("/v1/queues/stoppable/claim", json={"worker_id": "w"}).json()["tasks"]
        sign_in(page, server.base_url, server.token, f"/dashboard/tasks/{task['id']}")
        accept_dialogs(page, [])
        page.get_by_role("button", name="Request cancel").click()
        expect(page.locator("#notice")).to_contain_text("Cancel requested")
        expect(page.locator("#facts")).to_contain_text("requested")
        expect(page.get_by_role("button", name="Request cancel")).to_be_hidden()
        beat = http.post(
            f"/v1/tasks/{task['id']}/heartbeat", json={"lease_token": leased["lease"]["token"]}
        )
        assert beat.json()["cancel_requested"] is True


def test_the_cancel_button_goes_away_live_when_the_task_finishes(
    page: Page, server: ServerProcess
) -> None:
    with server.client() as http:
        task = submit(http, "late-cancel")
    sign_in(page, server.base_url, server.token, f"/dashboard/tasks/{task['id']}")
    expect(page.get_by_role("button", name="Cancel task")).to_be_visible()
    with server.client() as http:
        (leased,) = http.post("/v1/queues/late-cancel/claim", json={"worker_id": "w"}).json()[
            "tasks"
        ]
        expect(page.get_by_role("button", name="Request cancel")).to_be_visible()
        http.post(
            f"/v1/tasks/{task['id']}/complete", json={"lease_token": leased["lease"]["token"]}
        )
    expect(page.locator("#facts .badge")).to_have_text("succeeded")
    expect(page.locator("#cancel")).to_be_hidden()


def test_filters_search_and_paging_on_the_queue_page(page: Page, server: ServerProcess) -> None:
    with server.client() as http:
        items = [{"type": "bulk", "tags": ["batch"]} for _ in range(55)]
        answer = http.post("/v1/queues/listed/tasks/batch", json={"tasks": items})
        assert answer.status_code == 200, answer.text
        special = submit(http, "listed", type="special", tags=["vip"])
        dead = make_dead(http, "listed", "boom", type="special", priority="high")
    sign_in(page, server.base_url, server.token, "/dashboard/queues/listed")
    rows = page.locator("#tasks tbody tr")
    expect(rows).to_have_count(50)
    expect(rows.first).to_have_attribute("data-task", dead["id"])  # newest first

    page.get_by_role("button", name="Older").click()
    expect(rows).to_have_count(7)
    expect(page.get_by_role("button", name="Older")).to_be_hidden()
    page.get_by_role("button", name="Newest").click()
    expect(rows).to_have_count(50)

    page.get_by_label("State").select_option("dead")
    page.get_by_role("button", name="Apply").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-task", dead["id"])
    expect(page).to_have_url(re.compile(r"\?state=dead$"))

    page.get_by_label("State").select_option("")
    page.get_by_label("Type").fill("special")
    page.get_by_label("Task id or tag").fill("vip")
    page.get_by_role("button", name="Apply").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-task", special["id"])

    # The filters are in the URL: a reload shows the same list.
    page.reload()
    expect(page.get_by_label("Task id or tag")).to_have_value("vip")
    expect(rows).to_have_count(1)

    page.get_by_label("Type").fill("")
    page.get_by_label("Task id or tag").fill("no-such-tag")
    page.get_by_role("button", name="Apply").click()
    expect(rows).to_have_count(0)
    expect(page.locator("#empty")).to_be_visible()

    page.get_by_label("Task id or tag").fill("01AAAAAAAAAAAAAAAAAAAAAAAA")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#notice")).to_contain_text("No task 01AAAAAAAAAAAAAAAAAAAAAAAA")

    page.get_by_label("Task id or tag").fill(special["id"].lower())
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(f"/dashboard/tasks/{special['id']}$"))
    expect(page.locator("#facts")).to_contain_text("special")


def test_schedules_are_created_paused_and_deleted(page: Page, server: ServerProcess) -> None:
    sign_in(page, server.base_url, server.token, "/dashboard/schedules")
    expect(page.locator("#empty")).to_be_visible()
    page.get_by_label("Name").fill("nightly-report")
    page.get_by_label("Cron expression").fill("30 2 * * *")
    page.get_by_label("Time zone").fill("Europe/Berlin")
    page.get_by_label("Queue").fill("reports")
    page.get_by_label("Task type").fill("report.build")
    page.get_by_label("Payload (JSON)").fill('{"kind": "daily"}')
    page.get_by_role("button", name="Create schedule").click()
    expect(page.locator("#notice")).to_contain_text("Schedule nightly-report created")
    row = page.locator("tr[data-schedule='nightly-report']")
    expect(row).to_contain_text("30 2 * * * (Europe/Berlin)")
    expect(row).to_contain_text("report.build")
    expect(row).to_contain_text("never")
    with server.client() as http:
        stored = http.get("/v1/schedules/nightly-report").json()
    assert stored["task"]["payload"] == {"kind": "daily"}
    assert stored["timezone"] == "Europe/Berlin" and stored["missed"] == "run_once"

    # Bad input is the API's to refuse, and the page says why.
    page.get_by_label("Name").fill("broken")
    page.get_by_label("Cron expression").fill("61 * * * *")
    page.get_by_label("Queue").fill("reports")
    page.get_by_label("Task type").fill("x")
    page.get_by_role("button", name="Create schedule").click()
    expect(page.locator("#notice")).to_contain_text("Could not create schedule broken")
    page.get_by_label("Cron expression").fill("* * * * *")
    page.get_by_label("Payload (JSON)").fill("{not json")
    page.get_by_role("button", name="Create schedule").click()
    expect(page.locator("#notice")).to_contain_text("The payload is not JSON")
    with server.client() as http:
        assert http.get("/v1/schedules/broken").status_code == 404

    row.get_by_role("button", name="Pause schedule nightly-report").click()
    expect(row.locator("[data-next]")).to_have_text("paused")
    with server.client() as http:
        assert http.get("/v1/schedules/nightly-report").json()["paused"] is True
    row.get_by_role("button", name="Resume schedule nightly-report").click()
    expect(row.locator("[data-next] time")).to_be_visible()

    questions: list[str] = []
    accept_dialogs(page, questions)
    row.get_by_role("button", name="Delete schedule nightly-report").click()
    expect(row).to_have_count(0)
    assert questions == ["Delete schedule nightly-report? Tasks it already submitted stay."]
    with server.client() as http:
        assert http.get("/v1/schedules/nightly-report").status_code == 404


def test_a_schedules_fire_shows_up_live_with_its_task(page: Page, server: ServerProcess) -> None:
    with server.client() as http:
        created = http.post(
            "/v1/schedules",
            json={
                "id": "every-second",
                "cron": "* * * * * *",
                "queue": "ticks",
                "task": {"type": "tick"},
            },
        )
        assert created.status_code == 201, created.text
    sign_in(page, server.base_url, server.token, "/dashboard/schedules")
    row = page.locator("tr[data-schedule='every-second']")
    expect(row.locator("a.mono")).to_be_visible()  # the link to the last task it submitted
    task_id = row.locator("a.mono").inner_text()
    with server.client() as http:
        assert http.get(f"/v1/tasks/{task_id}").json()["queue"] == "ticks"
        http.delete("/v1/schedules/every-second")
