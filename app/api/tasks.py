"""Handlers for producers: submit (one, batch), get, list, cancel."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from app.api.http import JSONResponse, RequestContext
from app.api.problems import describe_error, error_extra, problem_body
from app.api.render import task_json
from app.api.validation import item_errors
from app.core.errors import InvalidInput, TaskgateError
from app.core.models import SubmitOutcome, TaskFilter, TaskState


async def submit_task(ctx: RequestContext) -> Response:
    queue = ctx.params["queue"]
    ctx.require_queue(queue)
    outcome = await ctx.services.tasks.submit(queue, ctx.body, ctx.params.get("Idempotency-Key"))
    body = task_json(outcome.task)
    if outcome.created:
        return JSONResponse(
            body, status_code=201, headers={"Location": f"/v1/tasks/{outcome.task.id}"}
        )
    return JSONResponse(body, status_code=200)


def _rejected(index: int, error: TaskgateError, request_id: str) -> dict[str, Any]:
    status, slug, title = describe_error(error)
    return {
        "index": index,
        "status": status,
        "error": problem_body(status, slug, title, error.detail, request_id, error_extra(error)),
    }


async def submit_task_batch(ctx: RequestContext) -> Response:
    queue = ctx.params["queue"]
    ctx.require_queue(queue)
    items: list[Any] = ctx.body["tasks"]
    await ctx.charge(len(items) - 1)  # the request itself counted one
    validator = ctx.request.app.state.task_submit_validator
    results: list[dict[str, Any] | None] = [None] * len(items)
    valid_indexes: list[int] = []
    for index, item in enumerate(items):
        errors = item_errors(validator, item, f"body.tasks[{index}]")
        if errors:
            error = InvalidInput(f"{errors[0].field}: {errors[0].message}", errors)
            results[index] = _rejected(index, error, ctx.request_id)
        else:
            valid_indexes.append(index)
    outcomes = await ctx.services.tasks.submit_many(
        queue,
        [items[i] for i in valid_indexes],
        field_prefixes=[f"body.tasks[{i}]" for i in valid_indexes],
    )
    for index, outcome in zip(valid_indexes, outcomes, strict=True):
        if isinstance(outcome, SubmitOutcome):
            results[index] = {
                "index": index,
                "status": 201 if outcome.created else 200,
                "task": task_json(outcome.task),
            }
        else:
            results[index] = _rejected(index, outcome, ctx.request_id)
    statuses = [r["status"] for r in results if r is not None]
    return JSONResponse(
        {
            "results": results,
            "created": statuses.count(201),
            "existing": statuses.count(200),
            "rejected": sum(1 for s in statuses if s >= 400),
        }
    )


async def get_task(ctx: RequestContext) -> Response:
    await ctx.require_task(ctx.params["task_id"])
    task = await ctx.services.tasks.get(ctx.params["task_id"], float(ctx.params.get("wait", 0)))
    return JSONResponse(task_json(task))


async def list_tasks(ctx: RequestContext) -> Response:
    state = ctx.params.get("state")
    queue = ctx.params.get("queue")
    if queue is not None and not ctx.principal.allows_queue(queue):
        return JSONResponse({"tasks": [], "next_cursor": None})
    tasks, next_cursor = await ctx.services.tasks.list_page(
        TaskFilter(
            queue=queue,
            state=TaskState(state) if state else None,
            type=ctx.params.get("type"),
            tag=ctx.params.get("tag"),
            before_id=ctx.params.get("cursor"),
            limit=ctx.params.get("limit", 100),
        )
    )
    # A token limited to some queues sees only their tasks (a page may come out shorter).
    visible = [t for t in tasks if ctx.principal.allows_queue(t.queue)]
    return JSONResponse({"tasks": [task_json(t) for t in visible], "next_cursor": next_cursor})


async def cancel_task(ctx: RequestContext) -> Response:
    await ctx.require_task(ctx.params["task_id"])
    task = await ctx.services.tasks.cancel(ctx.params["task_id"])
    return JSONResponse(task_json(task))
