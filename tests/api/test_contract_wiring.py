"""Spec ↔ code: every operationId has a handler, every route has an operationId; docs offline."""

from __future__ import annotations

import httpx
import pytest
import yaml
from starlette.routing import Mount, Route

from app.api.routes import HANDLERS
from app.api.spec import load_spec
from app.main import create_app
from app.resources import openapi_path
from tests.conftest import SettingsFactory


def test_every_operation_has_a_handler_and_every_route_an_operation(
    make_settings: SettingsFactory,
) -> None:
    spec = load_spec(openapi_path())
    operations = {(op.method, op.path): op.operation_id for op in spec.operations()}
    assert all(operations.values())
    assert set(operations.values()) == set(HANDLERS)
    app = create_app(make_settings())
    served = set()
    for route in app.routes:
        if isinstance(route, Mount) or route.path == "/docs/init.js":
            continue  # the docs page's static assets, not API operations
        if route.path == "/dashboard" or route.path.startswith("/dashboard/"):
            continue  # the dashboard's HTML pages: outside the spec, they serve no data
        assert isinstance(route, Route)
        for method in route.methods or ():
            if method != "HEAD":
                served.add((method, route.path))
    assert served == set(operations)


def test_every_error_response_uses_the_problem_schema() -> None:
    document = load_spec(openapi_path()).document
    responses = document["components"]["responses"]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if int(status) < 400:
                    continue
                resolved = responses[response["$ref"].rsplit("/", 1)[-1]]
                schema = resolved["content"]["application/problem+json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Problem"}, (path, method, status)
            body = operation.get("requestBody")
            if body:
                assert body["content"]["application/json"].get("examples"), (path, method)


@pytest.mark.anyio
async def test_spec_and_offline_docs_are_served(client: httpx.AsyncClient) -> None:
    as_json = (await client.get("/openapi.json")).json()
    as_yaml = yaml.safe_load((await client.get("/openapi.yaml")).content)
    assert as_json == as_yaml and as_json["openapi"].startswith("3.1")
    page = await client.get("/docs")
    assert page.status_code == 200 and "/docs/static/swagger-ui-bundle.js" in page.text
    bundle = await client.get("/docs/static/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and len(bundle.content) > 100_000
    init = await client.get("/docs/init.js")
    assert "/openapi.json" in init.text
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).json() == {"status": "ok"}
    assert (await client.get("/metrics")).status_code == 200
