"""Routes built from the spec: each operationId maps to one handler, wrapped in validation."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from app.api import events, queues, schedules, system, tasks, work
from app.api.guard import Access, access_for
from app.api.http import RequestContext, parse_json, read_body
from app.api.operation_table import Endpoint, OperationTable
from app.api.problems import error_response, problem_response
from app.api.spec import Spec
from app.api.validation import OperationValidator
from app.core.errors import FieldError, InvalidInput, TaskgateError

Handler = Callable[[RequestContext], Awaitable[Response]]

log = logging.getLogger("taskgate.api")

HANDLERS: dict[str, Handler] = {
    "submitTask": tasks.submit_task,
    "submitTaskBatch": tasks.submit_task_batch,
    "getTask": tasks.get_task,
    "listTasks": tasks.list_tasks,
    "cancelTask": tasks.cancel_task,
    "claimTasks": work.claim_tasks,
    "heartbeatTask": work.heartbeat_task,
    "completeTask": work.complete_task,
    "failTask": work.fail_task,
    "completeTasks": work.complete_tasks,
    "failTasks": work.fail_tasks,
    "listWorkers": work.list_workers,
    "streamEvents": events.stream_events,
    "listQueues": queues.list_queues,
    "getQueue": queues.get_queue,
    "configureQueue": queues.configure_queue,
    "pauseQueue": queues.pause_queue,
    "resumeQueue": queues.resume_queue,
    "listDeadTasks": queues.list_dead_tasks,
    "redriveDeadTasks": queues.redrive_dead_tasks,
    "purgeDeadTasks": queues.purge_dead_tasks,
    "createSchedule": schedules.create_schedule,
    "listSchedules": schedules.list_schedules,
    "getSchedule": schedules.get_schedule,
    "updateSchedule": schedules.update_schedule,
    "deleteSchedule": schedules.delete_schedule,
    "getHealth": system.get_health,
    "getReadiness": system.get_readiness,
    "getMetrics": system.get_metrics,
    "getOpenapiJson": system.get_openapi_json,
    "getOpenapiYaml": system.get_openapi_yaml,
    "getDocs": system.get_docs,
}


_NONE: dict[str, str] = {}


def request_id_of(request: Request) -> str:
    return str(request.scope.get("taskgate.request_id", ""))


def _endpoint(
    handler: Handler, validator: OperationValidator, max_body_bytes: int, access: Access
) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        request_id = request_id_of(request)
        try:
            principal = await request.app.state.guard.admit(request, access)
            params = validator.parameters(
                request.path_params,
                request.query_params if validator.reads_query else _NONE,
                request.headers if validator.reads_headers else _NONE,
            )
            body = None
            if validator.accepts_body:
                raw = await read_body(request, max_body_bytes)
                if raw:
                    body = parse_json(raw, request.headers.get("content-type"))
                    validator.body(body)
                elif validator.body_required:
                    raise InvalidInput(
                        "a JSON body is required", [FieldError("body", "is required")]
                    )
            context = RequestContext(request, params, body, request_id, principal, access.group)
            return await handler(context)
        except TaskgateError as exc:
            return error_response(exc, request_id)
        except Exception:
            log.exception("unhandled error", extra={"request_id": request_id})
            return problem_response(
                500,
                "internal-error",
                "Internal server error",
                "the server failed to handle this request; "
                f"quote request id {request_id} when reporting it",
                request_id,
            )

    return endpoint


@dataclass(frozen=True, slots=True)
class ApiRoutes:
    """The spec's operations twice: as Starlette routes (plus the docs' assets), and as the
    table the edge middleware looks operations up in first."""

    routes: list[BaseRoute]
    operations: OperationTable


def build_routes(
    spec: Spec, max_body_bytes: int, *, metrics_auth: bool = True, docs_auth: bool = False
) -> ApiRoutes:
    """One endpoint per spec operation, plus the docs' static assets.

    Raises:
        RuntimeError: an operation has no handler or no operationId, or a handler has no operation.
    """
    operations = spec.operations()
    missing_id = [f"{op.method} {op.path}" for op in operations if not op.operation_id]
    ids = {op.operation_id for op in operations}
    without_handler = sorted(ids - HANDLERS.keys())
    without_operation = sorted(HANDLERS.keys() - ids)
    if missing_id or without_handler or without_operation:
        raise RuntimeError(
            f"spec and handlers disagree: operations without operationId {missing_id}, "
            f"without handler {without_handler}, handlers without operation {without_operation}"
        )
    by_path: dict[str, dict[str, Endpoint]] = {}
    for op in operations:
        validator = OperationValidator(spec, op)
        access = access_for(
            op.operation_id, op.scopes, metrics_auth=metrics_auth, docs_auth=docs_auth
        )
        by_path.setdefault(op.path, {})[op.method] = _endpoint(
            HANDLERS[op.operation_id], validator, max_body_bytes, access
        )
    # Literal paths first: `/v1/tasks/complete` must not be taken for `/v1/tasks/{task_id}`
    # (Starlette answers a method mismatch from the first route whose path matches).
    ordered = dict(sorted(by_path.items(), key=lambda entry: "{" in entry[0]))
    routes: list[BaseRoute] = [
        Route(path, _dispatch(methods), methods=list(methods)) for path, methods in ordered.items()
    ]
    assets = resources.files("swagger_ui") / "static"
    routes.append(Route("/docs/init.js", _static_handler(system.get_docs_init), methods=["GET"]))
    routes.append(Mount("/docs/static", app=StaticFiles(directory=str(assets)), name="docs-static"))
    return ApiRoutes(routes, OperationTable(ordered))


def _dispatch(methods: dict[str, Endpoint]) -> Endpoint:
    if len(methods) == 1:
        return next(iter(methods.values()))

    async def by_method(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await methods[method](request)

    return by_method


def _static_handler(handler: Handler) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        return await handler(RequestContext(request, {}, None, request_id_of(request)))

    return endpoint
