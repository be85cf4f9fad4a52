"""GET /v1/events in process: the text/event-stream framing, resuming, filtering by queue
and by the token's queues, and bad input. Streams are read whole (wait_seconds is short);
following live changes across processes is tests/e2e/test_events_stream.py's job."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest

from app.main import create_app
from tests.conftest import SettingsFactory, admin_token, running_app

pytestmark = pytest.mark.anyio


def parse_stream(text: str) -> list[dict[str, Any]]:
    """The events of a text/event-stream body (fields per event, data parsed as JSON)."""
    events = []
    for block in text.split("\n\n"):
        fields: dict[str, Any] = {}
        for line in block.splitlines():
            if not line or line.startswith(":"):
                continue
            name, _, value = line.partition(": ")
            fields[name] = orjson.loads(value) if name == "data" else value
        if fields:
            events.append(fields)
    return events


async def read_events(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    headers = params.pop("headers", {})
    response = await client.get("/v1/events", params={"wait_seconds": 0, **params}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-accel-buffering"] == "no"
    return parse_stream(response.text)


async def test_events_resume_after_an_id_and_say_what_changed(client: httpx.AsyncClient) -> None:
    # Starts "now": nothing yet, and the opening says where it started (no event so far).
    assert await read_events(client) == [{"retry": "1000", "id": "0"}]
    created = (await client.post("/v1/queues/q/tasks", json={"type": "t"})).json()
    claimed = await client.post("/v1/queues/q/claim", json={"worker_id": "w"})
    (leased,) = claimed.json()["tasks"]
    await client.post(
        f"/v1/tasks/{created['id']}/complete", json={"lease_token": leased["lease"]["token"]}
    )

    opening, *events = await read_events(client, after=0)

    assert opening == {"retry": "1000", "id": "0"}
    assert [(e["event"], e["data"]["state"], e["data"]["attempts"]) for e in events] == [
        ("task", "queued", 0),
        ("task", "running", 1),
        ("task", "succeeded", 1),
    ]
    assert all(e["data"]["task_id"] == created["id"] for e in events)
    assert [int(e["id"]) for e in events] == [e["data"]["event_id"] for e in events]
    assert events[0]["data"]["at"] == created["created_at"]
    after_first = await read_events(client, headers={"Last-Event-ID": events[0]["id"]}, after=0)
    assert [e["data"]["state"] for e in after_first[1:]] == ["running", "succeeded"]


async def test_a_stream_that_starts_now_opens_at_the_newest_id(
    client: httpx.AsyncClient,
) -> None:
    # A client that reconnects before any event arrived resumes from the opening's id, so
    # a change made between two streams is never skipped.
    await client.post("/v1/queues/q/tasks", json={"type": "t"})
    (opening,) = await read_events(client)
    created = (await client.post("/v1/queues/q/tasks", json={"type": "t"})).json()

    _, event = await read_events(client, headers={"Last-Event-ID": opening["id"]})

    assert opening["id"] == "1"
    assert (event["id"], event["data"]["task_id"]) == ("2", created["id"])


async def test_events_filter_by_queue(client: httpx.AsyncClient) -> None:
    await client.post("/v1/queues/a/tasks", json={"type": "t"})
    await client.post("/v1/queues/b/tasks", json={"type": "t"})

    events = (await read_events(client, after=0, queue="b"))[1:]

    assert [e["data"]["queue"] for e in events] == ["b"]


async def test_an_unknown_or_dropped_id_starts_with_a_reset(client: httpx.AsyncClient) -> None:
    await client.post("/v1/queues/q/tasks", json={"type": "t"})

    _opening, reset = await read_events(client, after=10**9)

    assert reset["event"] == "reset"


async def test_a_limited_token_sees_only_its_queues(make_settings: SettingsFactory) -> None:
    settings = make_settings()
    limited = admin_token(settings, ("tasks:read",), queues=["emails"])
    async with running_app(create_app(settings), admin_token(settings)) as client:
        await client.post("/v1/queues/emails/tasks", json={"type": "t"})
        await client.post("/v1/queues/secret/tasks", json={"type": "t"})
        headers = {"Authorization": f"Bearer {limited}"}

        events = (await read_events(client, after=0, headers=headers))[1:]
        refused = await client.get(
            "/v1/events", params={"queue": "secret", "wait_seconds": 0}, headers=headers
        )

    assert [e["data"]["queue"] for e in events] == ["emails"]
    assert refused.status_code == 403


@pytest.mark.parametrize(
    ("params", "headers"),
    [
        ({"after": "-1"}, {}),
        ({"after": "x"}, {}),
        ({"wait_seconds": "nan"}, {}),
        ({}, {"Last-Event-ID": "abc"}),
        ({"queue": "no spaces"}, {}),
    ],
)
async def test_bad_input_is_a_422_problem(
    client: httpx.AsyncClient, params: dict[str, str], headers: dict[str, str]
) -> None:
    response = await client.get("/v1/events", params=params, headers=headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
