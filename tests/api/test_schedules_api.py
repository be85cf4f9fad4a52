"""Schedules over HTTP in process: create, read, list, change, delete; errors; queue patterns."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from app.core.clock import FixedClock, parse_rfc3339_ms
from app.main import create_app
from tests.conftest import AppFactory, SettingsFactory, admin_token, running_app

pytestmark = pytest.mark.anyio

START = "2026-01-01T00:00:30.000Z"


def nightly(**fields: Any) -> dict[str, Any]:
    return {
        "id": "nightly-report",
        "cron": "30 2 * * *",
        "timezone": "Europe/Berlin",
        "queue": "reports",
        "task": {"type": "report.build", "payload": {"kind": "daily"}, "priority": "high"},
    } | fields


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["detail"]
    return body


async def test_create_answers_201_with_the_schedule_and_its_first_fire_time(
    start_app: AppFactory,
) -> None:
    clock = FixedClock(parse_rfc3339_ms(START))
    async with start_app(clock=clock) as client:
        response = await client.post("/v1/schedules", json=nightly())
        assert response.status_code == 201, response.text
        assert response.headers["location"] == "/v1/schedules/nightly-report"
        assert response.json() == {
            "id": "nightly-report",
            "cron": "30 2 * * *",
            "timezone": "Europe/Berlin",
            "queue": "reports",
            "task": {
                "type": "report.build",
                "payload": {"kind": "daily"},
                "priority": "high",
                "tags": [],
            },
            "missed": "run_once",
            "max_catch_up": 100,
            "paused": False,
            "next_run_at": "2026-01-01T01:30:00.000Z",  # 02:30 in Berlin (CET)
            "last_run_at": None,
            "last_task_id": None,
            "created_at": START,
            "updated_at": START,
        }
        read = await client.get("/v1/schedules/nightly-report")
        assert read.status_code == 200 and read.json() == response.json()


async def test_a_due_schedule_submits_an_ordinary_task(make_settings: SettingsFactory) -> None:
    clock = FixedClock(parse_rfc3339_ms(START))
    settings = make_settings()
    app = create_app(settings, clock=clock)
    async with running_app(app, admin_token(settings)) as client:
        body = nightly(id="every-minute", cron="* * * * *", timezone="UTC")
        body["task"] |= {"max_attempts": 2, "tags": ["cron"], "retry": {"factor": 3}}
        assert (await client.post("/v1/schedules", json=body)).status_code == 201
        clock.advance(30)
        # The app's own loop may get there first; either way the fire time fires once.
        await app.state.scheduler.fire_due_once()
        tasks = (await client.get("/v1/tasks?queue=reports")).json()["tasks"]
        (task,) = tasks
        assert task["run_at"] == "2026-01-01T00:01:00.000Z"
        assert task["idempotency_key"] == "schedule:every-minute:1767225660000"
        assert (task["type"], task["priority"], task["max_attempts"]) == ("report.build", "high", 2)
        assert task["tags"] == ["cron"] and task["retry"]["factor"] == 3
        schedule = (await client.get("/v1/schedules/every-minute")).json()
        assert schedule["last_task_id"] == task["id"]
        assert schedule["last_run_at"] == "2026-01-01T00:01:00.000Z"
        assert schedule["next_run_at"] == "2026-01-01T00:02:00.000Z"
        claimed = await client.post("/v1/queues/reports/claim", json={"worker_id": "w"})
        assert [t["id"] for t in claimed.json()["tasks"]] == [task["id"]]


async def test_a_taken_id_is_409(client: httpx.AsyncClient) -> None:
    assert (await client.post("/v1/schedules", json=nightly())).status_code == 201
    again = await client.post("/v1/schedules", json=nightly(cron="0 0 * * *"))
    assert "exists already" in problem(again, 409)["detail"]
    kept = (await client.get("/v1/schedules/nightly-report")).json()
    assert kept["cron"] == "30 2 * * *"


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ({"cron": "61 2 * * *"}, "body.cron", "Bad minute"),
        ({"cron": "* * * * * * *"}, "body.cron", "Wrong number of fields"),
        ({"cron": "* * */20 * 1L"}, "body.cron", "never fires"),
        ({"cron": "*\t*\t*\t*\t*"}, "body.cron", "does not match"),
        ({"timezone": "Mars/Olympus"}, "body.timezone", "unknown time zone"),
        ({"timezone": "localtime"}, "body.timezone", "unknown time zone"),
        ({"id": "-starts-with-a-dash"}, "body.id", "does not match"),
        ({"missed": "sometimes"}, "body.missed", "is not one of"),
        ({"max_catch_up": 1001}, "body.max_catch_up", "maximum"),
        ({"task": {"payload": 1}}, "body.task.type", "is required"),
        ({"task": {"type": "t", "run_at": "2026-01-01T00:00:00Z"}}, "body.task", "run_at"),
        ({"queue": "bad queue"}, "body.queue", "does not match"),
    ],
)
async def test_bad_input_is_a_422_naming_the_field(
    client: httpx.AsyncClient, change: dict[str, Any], field: str, says: str
) -> None:
    body = problem(await client.post("/v1/schedules", json=nightly() | change), 422)
    assert any(e["field"] == field and says in e["message"] for e in body["errors"]), body
    assert (await client.get("/v1/schedules/nightly-report")).status_code == 404


async def test_a_bad_zone_and_a_bad_expression_are_named_together(
    client: httpx.AsyncClient,
) -> None:
    body = problem(
        await client.post("/v1/schedules", json=nightly(cron="30 25 * * *", timezone="Berln")), 422
    )
    assert [e["field"] for e in body["errors"]] == ["body.timezone", "body.cron"]
    assert "Bad hour" in body["detail"] and "Berln" in body["detail"]


async def test_unknown_schedules_are_404(client: httpx.AsyncClient) -> None:
    for method, body in (("GET", None), ("PATCH", {"paused": True}), ("DELETE", None)):
        response = await client.request(method, "/v1/schedules/nope", json=body)
        assert "schedule 'nope' does not exist" in problem(response, 404)["detail"]


async def test_list_pages_by_id(client: httpx.AsyncClient) -> None:
    for name in ("c", "a", "b"):
        assert (await client.post("/v1/schedules", json=nightly(id=name))).status_code == 201
    first = (await client.get("/v1/schedules?limit=2")).json()
    assert [s["id"] for s in first["schedules"]] == ["a", "b"]
    assert first["next_cursor"] == "b"
    rest = (await client.get("/v1/schedules?limit=2&cursor=b")).json()
    assert [s["id"] for s in rest["schedules"]] == ["c"] and rest["next_cursor"] is None


async def test_patch_changes_only_what_it_names(start_app: AppFactory) -> None:
    clock = FixedClock(parse_rfc3339_ms(START))
    async with start_app(clock=clock) as client:
        await client.post("/v1/schedules", json=nightly())
        clock.advance(10)
        paused = await client.patch("/v1/schedules/nightly-report", json={"paused": True})
        assert paused.status_code == 200, paused.text
        assert paused.json()["paused"] is True and paused.json()["next_run_at"] is None
        assert paused.json()["updated_at"] == "2026-01-01T00:00:40.000Z"
        changed = await client.patch(
            "/v1/schedules/nightly-report",
            json={"paused": False, "cron": "*/15 * * * * *", "timezone": "UTC", "missed": "skip"},
        )
        assert changed.status_code == 200, changed.text
        body = changed.json()
        assert (body["cron"], body["timezone"], body["missed"]) == ("*/15 * * * * *", "UTC", "skip")
        assert body["next_run_at"] == "2026-01-01T00:00:45.000Z"
        assert body["task"]["type"] == "report.build" and body["queue"] == "reports"
        bad = await client.patch("/v1/schedules/nightly-report", json={"timezone": "Nowhere"})
        assert problem(bad, 422)["errors"][0]["field"] == "body.timezone"
        unknown_field = await client.patch("/v1/schedules/nightly-report", json={"next_run_at": 1})
        problem(unknown_field, 422)
        kept = (await client.get("/v1/schedules/nightly-report")).json()
        assert kept == body


async def test_delete_is_204_and_the_schedule_is_gone(client: httpx.AsyncClient) -> None:
    await client.post("/v1/schedules", json=nightly())
    deleted = await client.delete("/v1/schedules/nightly-report")
    assert deleted.status_code == 204 and deleted.content == b""
    problem(await client.get("/v1/schedules/nightly-report"), 404)
    problem(await client.delete("/v1/schedules/nightly-report"), 404)


async def test_queue_patterns_of_the_token_apply(make_settings: SettingsFactory) -> None:
    settings = make_settings()
    admin = {"Authorization": f"Bearer {admin_token(settings)}"}
    limited = {
        "Authorization": f"Bearer {admin_token(settings, ('queues:admin',), queues=['reports.*'])}"
    }
    async with running_app(create_app(settings)) as client:
        other = await client.post("/v1/schedules", json=nightly(id="other"), headers=admin)
        assert other.status_code == 201
        refused = await client.post(
            "/v1/schedules", json=nightly(id="mine", queue="secret"), headers=limited
        )
        assert "not allowed on queue 'secret'" in problem(refused, 403)["detail"]
        mine = await client.post(
            "/v1/schedules", json=nightly(id="mine", queue="reports.daily"), headers=limited
        )
        assert mine.status_code == 201, mine.text
        for method, body in (("GET", None), ("PATCH", {"paused": True}), ("DELETE", None)):
            response = await client.request(
                method, "/v1/schedules/other", json=body, headers=limited
            )
            problem(response, 403)
        moved = await client.patch("/v1/schedules/mine", json={"queue": "secret"}, headers=limited)
        problem(moved, 403)
        listed = (await client.get("/v1/schedules", headers=limited)).json()["schedules"]
        assert [s["id"] for s in listed] == ["mine"]
        both = (await client.get("/v1/schedules", headers=admin)).json()["schedules"]
        assert [(s["id"], s["queue"], s["paused"]) for s in both] == [
            ("mine", "reports.daily", False),
            ("other", "reports", False),
        ]


async def test_schedules_need_the_queues_admin_scope(make_settings: SettingsFactory) -> None:
    settings = make_settings()
    reader = {"Authorization": f"Bearer {admin_token(settings, ('tasks:read', 'tasks:submit'))}"}
    async with running_app(create_app(settings)) as client:
        response = await client.get("/v1/schedules", headers=reader)
        assert 'scope="queues:admin"' in response.headers["www-authenticate"]
        problem(response, 403)
        problem(await client.post("/v1/schedules", json=nightly(), headers=reader), 403)
