"""Handlers for pull workers: claim (long-poll), heartbeat, complete, fail; the worker list."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from starlette.responses import Response

from app.api.http import JSONResponse, RequestContext
from app.api.problems import describe_error, error_extra, problem_body
from app.api.render import task_json, worker_json
from app.auth.principal import Principal
from app.core.clock import format_ms
from app.core.errors import LeaseLost, NotFound, TaskgateError
from app.core.jsontext import dump_json
from app.core.models import ErrorReport, FailOrder, Task, WorkerInfo


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
    task = await ctx.services.tasks.fail(
        ctx.params["task_id"],
        body["lease_token"],
        _report(body.get("error")),
        retry=body.get("retry", True),
        retry_after_s=body.get("retry_after_seconds"),
    )
    return JSONResponse(task_json(task))


async def list_workers(ctx: RequestContext) -> Response:
    settings = ctx.request.app.state.settings
    clock = ctx.request.app.state.clock
    workers = await ctx.services.queues.workers()
    if ctx.principal.restricted:
        workers = [w for w in (_narrowed(w, ctx.principal) for w in workers) if w.queues]
    now_ms = clock.now_ms()
    alive_ms = settings.worker_alive_seconds * 1000
    return JSONResponse({"workers": [worker_json(w, now_ms, alive_ms) for w in workers]})


def _narrowed(worker: WorkerInfo, principal: Principal) -> WorkerInfo:
    """The worker as a queue-limited token may see it: its allowed queues and leases."""
    return replace(
        worker,
        queues=tuple(q for q in worker.queues if principal.allows_queue(q)),
        leases=tuple(lease for lease in worker.leases if principal.allows_queue(lease.queue)),
    )


def _report(reported: dict[str, Any] | None) -> ErrorReport:
    reported = reported or {}
    return ErrorReport(
        type=reported.get("type", "Error"),
        message=reported.get("message", "the worker reported a failure"),
        traceback=reported.get("traceback"),
    )


async def _hidden(ctx: RequestContext, items: list[dict[str, Any]]) -> set[int]:
    """Indexes of items whose task a queue-limited token may not see."""
    if not ctx.principal.restricted:
        return set()
    hidden = set()
    for index, item in enumerate(items):
        try:
            await ctx.require_task(item["task_id"])
        except NotFound:
            hidden.add(index)
    return hidden


def _batch_response(
    ctx: RequestContext,
    items: list[dict[str, Any]],
    outcomes: dict[int, Task | TaskgateError],
) -> Response:
    results: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        outcome = outcomes.get(index) or NotFound(f"task {item['task_id']!r} does not exist")
        if isinstance(outcome, Task):
            results.append(
                {
                    "index": index,
                    "task_id": outcome.id,
                    "status": 200,
                    "state": outcome.state.value,
                }
            )
            continue
        status, slug, title = describe_error(outcome)
        error = problem_body(
            status, slug, title, outcome.detail, ctx.request_id, error_extra(outcome)
        )
        results.append(
            {"index": index, "task_id": item["task_id"], "status": status, "error": error}
        )
    accepted = sum(1 for result in results if result["status"] == 200)
    return JSONResponse(
        {"results": results, "accepted": accepted, "rejected": len(results) - accepted}
    )


async def complete_tasks(ctx: RequestContext) -> Response:
    items: list[dict[str, Any]] = ctx.body["items"]
    await ctx.charge(len(items) - 1)  # the request itself counted one
    hidden = await _hidden(ctx, items)
    wanted = [index for index in range(len(items)) if index not in hidden]
    orders = [
        (
            items[i]["task_id"],
            items[i]["lease_token"],
            dump_json(items[i].get("result")).decode(),
        )
        for i in wanted
    ]
    done = await ctx.services.tasks.complete_many(orders) if orders else []
    return _batch_response(ctx, items, dict(zip(wanted, done, strict=True)))


async def fail_tasks(ctx: RequestContext) -> Response:
    items: list[dict[str, Any]] = ctx.body["items"]
    await ctx.charge(len(items) - 1)
    hidden = await _hidden(ctx, items)
    wanted = [index for index in range(len(items)) if index not in hidden]
    orders = []
    for i in wanted:
        after = items[i].get("retry_after_seconds")
        orders.append(
            FailOrder(
                task_id=items[i]["task_id"],
                lease_token=items[i]["lease_token"],
                error=_report(items[i].get("error")),
                retry=items[i].get("retry", True),
                retry_after_ms=None if after is None else round(after * 1000),
            )
        )
    done = await ctx.services.tasks.fail_many(orders) if orders else []
    return _batch_response(ctx, items, dict(zip(wanted, done, strict=True)))
