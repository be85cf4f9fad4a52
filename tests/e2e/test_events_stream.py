"""GET /v1/events over real sockets: a stream held open on one server process shows, as
they happen, the changes committed through another process on the same database, and a
reconnect with Last-Event-ID picks up where the stream left off."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from .harness import LONG_POLL_TIMEOUT, ServerFactory


def events_of(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """Each event of a text/event-stream as its fields (data parsed)."""
    fields: dict[str, Any] = {}
    for line in lines:
        if line == "":
            if fields:
                yield fields
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(": ")
            fields[name] = orjson.loads(value) if name == "data" else value


def test_a_stream_on_one_process_follows_changes_made_through_another(
    start_server: ServerFactory,
) -> None:
    server_a = start_server(name="server-a")
    server_b = start_server(server_a.database, name="server-b")
    with (
        server_a.client(timeout=LONG_POLL_TIMEOUT) as via_a,
        server_b.client() as via_b,
        via_a.stream("GET", "/v1/events", params={"queue": "live", "wait_seconds": 20}) as stream,
    ):
        assert stream.status_code == 200
        events = events_of(stream.iter_lines())
        assert next(events)["retry"] == "1000"  # the stream is open: start changing

        task = via_b.post("/v1/queues/live/tasks", json={"type": "t"}).json()
        via_b.post("/v1/queues/other/tasks", json={"type": "t"})  # not on this stream
        (leased,) = via_b.post("/v1/queues/live/claim", json={"worker_id": "w"}).json()["tasks"]
        via_b.post(
            f"/v1/tasks/{task['id']}/complete", json={"lease_token": leased["lease"]["token"]}
        )

        seen = [next(events) for _ in range(3)]

    assert [(e["event"], e["data"]["task_id"], e["data"]["state"]) for e in seen] == [
        ("task", task["id"], "queued"),
        ("task", task["id"], "running"),
        ("task", task["id"], "succeeded"),
    ]
    with server_b.client() as via_b:
        resumed = via_b.get(
            "/v1/events",
            params={"queue": "live", "wait_seconds": 0},
            headers={"Last-Event-ID": seen[0]["id"]},
        )
    after = list(events_of(iter(resumed.text.split("\n"))))[1:]
    assert [e["id"] for e in after] == [e["id"] for e in seen[1:]]


def test_a_stream_ends_at_its_wait_and_at_shutdown(start_server: ServerFactory) -> None:
    server = start_server()
    with server.client(timeout=LONG_POLL_TIMEOUT) as http:
        short = http.get("/v1/events", params={"wait_seconds": 0.3})
        assert short.status_code == 200 and short.text == "retry: 1000\nid: 0\n\n"
        with http.stream("GET", "/v1/events", params={"wait_seconds": 20}) as stream:
            lines = stream.iter_lines()
            assert (next(lines), next(lines)) == ("retry: 1000", "id: 0")
            server.terminate()  # SIGTERM: the stream must end, not hold the shutdown
            rest = list(lines)
    assert all(line == "" or line.startswith(":") for line in rest), rest
    assert server.wait_exit() == 0
