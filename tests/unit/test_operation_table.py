"""The operation table picks the operation Starlette's router would pick, or none.

For every request the table answers, Starlette's router (built from the same spec) must
fully match the same route with the same path parameters; what the table leaves alone
(unknown paths, wrong methods, empty segments) goes on to that router unchanged.
"""

from __future__ import annotations

import pytest
from starlette.routing import Match, Route

from app.api.routes import build_routes
from app.api.spec import load_spec
from app.resources import openapi_path

API = build_routes(load_spec(openapi_path()), 1_000_000)

REQUESTS = [
    ("POST", "/v1/queues/emails/tasks"),
    ("POST", "/v1/queues/emails/tasks/batch"),
    ("POST", "/v1/queues/batch/tasks"),
    ("GET", "/v1/tasks/01J00000000000000000000000"),
    ("HEAD", "/v1/tasks/01J00000000000000000000000"),
    ("POST", "/v1/tasks/complete"),
    ("GET", "/v1/tasks/complete"),
    ("POST", "/v1/tasks/fail"),
    ("POST", "/v1/tasks/abc/complete"),
    ("POST", "/v1/tasks/abc/fail"),
    ("POST", "/v1/tasks/abc/heartbeat"),
    ("POST", "/v1/tasks/abc/cancel"),
    ("GET", "/v1/tasks"),
    ("DELETE", "/v1/tasks"),
    ("GET", "/v1/queues"),
    ("GET", "/v1/queues/emails"),
    ("PATCH", "/v1/queues/emails"),
    ("PUT", "/v1/queues/emails"),
    ("POST", "/v1/queues/emails/pause"),
    ("POST", "/v1/queues/emails/claim"),
    ("GET", "/v1/queues/emails/dead"),
    ("DELETE", "/v1/queues/emails/dead"),
    ("POST", "/v1/queues/emails/dead/redrive"),
    ("GET", "/v1/workers"),
    ("GET", "/healthz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/docs/init.js"),
    ("GET", "/v1/queues//tasks"),
    ("POST", "/v1/queues/emails/tasks/"),
    ("GET", "/v1/nothing"),
    ("GET", "/"),
    ("GET", ""),
]


def starlette_choice(method: str, path: str) -> tuple[str, dict[str, str]] | None:
    scope = {"type": "http", "method": method, "path": path, "root_path": ""}
    for route in API.routes:
        match, child = route.matches(scope)
        if match is Match.FULL:
            assert isinstance(route, Route)
            return route.path, child["path_params"]
    return None


@pytest.mark.parametrize(("method", "path"), REQUESTS)
def test_table_agrees_with_the_router(method: str, path: str) -> None:
    found = API.operations.find(method, path)
    expected = starlette_choice(method, path)

    if found is None:
        # Left to the router, which must have no operation for it either (only assets).
        assert expected is None or expected[0] == "/docs/init.js"
        return
    assert expected == (found.template, found.path_params)


def test_the_common_operations_are_in_the_table() -> None:
    for method, path in [
        ("POST", "/v1/queues/emails/tasks"),
        ("POST", "/v1/queues/emails/claim"),
        ("POST", "/v1/tasks/complete"),
        ("POST", "/v1/tasks/abc/complete"),
        ("GET", "/v1/tasks/abc"),
        ("GET", "/healthz"),
    ]:
        assert API.operations.find(method, path) is not None, (method, path)
    assert API.operations.find("GET", "/v1/tasks/complete").template == "/v1/tasks/{task_id}"
