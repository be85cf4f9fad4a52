"""The dashboard's routes: one server-rendered shell per page, and its static files.

The pages carry only what the URL names (a queue, a task id); the data comes from the
API through the browser's token, so these routes need no authentication of their own.
"""

from __future__ import annotations

import jinja2
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

PREFIX = "/dashboard"


def _templates() -> Jinja2Templates:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("app.dashboard", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    return Jinja2Templates(env=environment)


def dashboard_routes() -> list[BaseRoute]:
    """The /dashboard pages and /dashboard/static, outside the OpenAPI spec."""
    templates = _templates()

    def render(request: Request, template: str, page_name: str, title: str) -> Response:
        response = templates.TemplateResponse(
            request,
            template,
            {"page": page_name, "title": title, **request.path_params},
        )
        # The pages hold no data, but a stale shell after an upgrade would load old scripts.
        response.headers["Cache-Control"] = "no-cache"
        return response

    async def overview(request: Request) -> Response:
        return render(request, "overview.html", "overview", "Queues")

    async def queue(request: Request) -> Response:
        return render(request, "queue.html", "queue", f"Queue {request.path_params['queue']}")

    async def dead_letters(request: Request) -> Response:
        name = request.path_params["queue"]
        return render(request, "dead.html", "dead", f"Dead letters of {name}")

    async def task(request: Request) -> Response:
        return render(request, "task.html", "task", f"Task {request.path_params['task_id']}")

    async def workers(request: Request) -> Response:
        return render(request, "workers.html", "workers", "Workers")

    async def schedules(request: Request) -> Response:
        return render(request, "schedules.html", "schedules", "Schedules")

    return [
        Route(PREFIX, overview, name="dashboard"),
        Route(f"{PREFIX}/queues/{{queue}}", queue, name="dashboard-queue"),
        Route(f"{PREFIX}/queues/{{queue}}/dead", dead_letters, name="dashboard-dead"),
        Route(f"{PREFIX}/tasks/{{task_id}}", task, name="dashboard-task"),
        Route(f"{PREFIX}/workers", workers, name="dashboard-workers"),
        Route(f"{PREFIX}/schedules", schedules, name="dashboard-schedules"),
        Mount(
            f"{PREFIX}/static",
            app=StaticFiles(packages=[("app.dashboard", "static")]),
            name="dashboard-static",
        ),
    ]
