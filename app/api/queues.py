"""Handlers for queues: stats, configure, pause/resume, dead letters."""

from __future__ import annotations

from starlette.responses import Response

from app.api.http import JSONResponse, RequestContext
from app.api.render import queue_json, task_json


async def list_queues(ctx: RequestContext) -> Response:
    queues = await ctx.services.queues.list_all()
    visible = [q for q in queues if ctx.principal.allows_queue(q.name)]
    return JSONResponse({"queues": [queue_json(q) for q in visible]})


async def get_queue(ctx: RequestContext) -> Response:
    ctx.require_queue(ctx.params["queue"])
    return JSONResponse(queue_json(await ctx.services.queues.get(ctx.params["queue"])))


async def configure_queue(ctx: RequestContext) -> Response:
    ctx.require_queue(ctx.params["queue"])
    info = await ctx.services.queues.configure(ctx.params["queue"], ctx.body)
    return JSONResponse(queue_json(info, reveal_secrets=True))


async def pause_queue(ctx: RequestContext) -> Response:
    ctx.require_queue(ctx.params["queue"])
    reason = (ctx.body or {}).get("reason")
    return JSONResponse(queue_json(await ctx.services.queues.pause(ctx.params["queue"], reason)))


async def resume_queue(ctx: RequestContext) -> Response:
    ctx.require_queue(ctx.params["queue"])
    return JSONResponse(queue_json(await ctx.services.queues.resume(ctx.params["queue"])))


async def list_dead_tasks(ctx: RequestContext) -> Response:
    ctx.require_queue(ctx.params["queue"])
    tasks, next_cursor = await ctx.services.queues.list_dead(
        ctx.params["queue"], ctx.params.get("cursor"), ctx.params.get("limit", 100)
    )
    return JSONResponse({"tasks": [task_json(t) for t in tasks], "next_cursor": next_cursor})


async def redrive_dead_tasks(ctx: RequestContext) -> Response:
    ctx.require_queue(ctx.params["queue"])
    task_ids = (ctx.body or {}).get("task_ids")
    moved = await ctx.services.queues.redrive(ctx.params["queue"], task_ids)
    return JSONResponse({"redriven": moved})


async def purge_dead_tasks(ctx: RequestContext) -> Response:
    ctx.require_queue(ctx.params["queue"])
    return JSONResponse({"purged": await ctx.services.queues.purge_dead(ctx.params["queue"])})
