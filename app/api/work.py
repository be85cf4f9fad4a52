"""Handlers for pull workers: claim (long-poll), heartbeat, complete, fail; the worker list."""

from __future__ import annotations

from starlette.responses import Response

from app.api.http import JSONResponse, RequestContext
from app.api.render import task_json, worker_json
from app.core.clock import format_ms
from app.core.errors import LeaseLost
from app.core.jsontext import dump_json
from app.core.models import ErrorReport


async def claim_tasks(ctx: RequestContext) -> Response:
    body = ctx.body
    ctx.require_queue(ctx.params["queue"])
    tasks = await ctx.services.tasks.claim(
        queue=ctx.params["queue"],
        worker_id=body["worker_id"],
        max_tasks=body.get("max_tasks", 1),
        wait_s=float(body.get("wait_seconds", 0)),
        lease_seconds=body.get("lease_seconds"),
        types=body.get("types"),
        worker_info=body.get("worker_info"),
        client_gone=ctx.request.is_disconnected,
    )
    return JSONResponse({"tasks": [task_json(t, with_lease=True) for t in tasks]})


async def heartbeat_task(ctx: RequestContext) -> Response:
    await ctx.require_task(ctx.params["task_id"])
    task = await ctx.services.tasks.heartbeat(
        ctx.params["task_id"], ctx.body["lease_token"], ctx.body.get("lease_seconds")
    )
    if task.lease_token is None or task.lease_expires_at_ms is None:
        raise LeaseLost()
    return JSONResponse(
        {
            "task_id": task.id,
            "state": task.state.value,
            "lease": {"token": task.lease_token, "expires_at": format_ms(task.lease_expires_at_ms)},
            "cancel_requested": task.cancel_requested,
        }
    )


async def complete_task(ctx: RequestContext) -> Response:
    await ctx.require_task(ctx.params["task_id"])
    result_json = dump_json(ctx.body.get("result")).decode()
    task = await ctx.services.tasks.complete(
        ctx.params["task_id"], ctx.body["lease_token"], result_json
    )
    return JSONResponse(task_json(task))


async def fail_task(ctx: RequestContext) -> Response:
    await ctx.require_task(ctx.params["task_id"])
    body = ctx.body
    reported = body.get("error") or {}
    error = ErrorReport(
        type=reported.get("type", "Error"),
        message=reported.get("message", "the worker reported a failure"),
        traceback=reported.get("traceback"),
    )
    task = await ctx.services.tasks.fail(
        ctx.params["task_id"],
        body["lease_token"],
        error,
        retry=body.get("retry", True),
        retry_after_s=body.get("retry_after_seconds"),
    )
    return JSONResponse(task_json(task))


async def list_workers(ctx: RequestContext) -> Response:
    settings = ctx.request.app.state.settings
    clock = ctx.request.app.state.clock
    workers = await ctx.services.queues.workers()
    now_ms = clock.now_ms()
    alive_ms = settings.worker_alive_seconds * 1000
    return JSONResponse({"workers": [worker_json(w, now_ms, alive_ms) for w in workers]})
