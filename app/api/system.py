"""Handlers for the system endpoints: health, readiness, metrics, the spec and its docs."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import HTMLResponse, Response

from app.api.http import JSONResponse, RequestContext

DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>taskgate API</title>
  <link rel="stylesheet" href="/docs/static/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/static/swagger-ui-bundle.js"></script>
  <script src="/docs/static/swagger-ui-standalone-preset.js"></script>
  <script src="/docs/init.js"></script>
</body>
</html>
"""

DOCS_INIT = """window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
  layout: "StandaloneLayout"
});
"""


async def get_health(ctx: RequestContext) -> Response:
    return JSONResponse({"status": "ok"})


async def get_readiness(ctx: RequestContext) -> Response:
    await ctx.request.app.state.store.ping()
    return JSONResponse({"status": "ok"})


async def get_metrics(ctx: RequestContext) -> Response:
    state = ctx.request.app.state
    now_ms = state.clock.now_ms()
    depths = await state.store.queue_depths(now_ms)
    return Response(state.metrics.render(depths, now_ms), media_type=CONTENT_TYPE_LATEST)


async def get_openapi_json(ctx: RequestContext) -> Response:
    return Response(ctx.request.app.state.spec.json_bytes, media_type="application/json")


async def get_openapi_yaml(ctx: RequestContext) -> Response:
    return Response(ctx.request.app.state.spec.yaml_bytes, media_type="application/yaml")


async def get_docs(ctx: RequestContext) -> Response:
    return HTMLResponse(DOCS_PAGE)


async def get_docs_init(ctx: RequestContext) -> Response:
    return Response(DOCS_INIT, media_type="text/javascript")
