"""Handlers for cron schedules: create, list, get, change, delete."""

from __future__ import annotations

from starlette.responses import Response

from app.api.http import JSONResponse, RequestContext
from app.api.render import schedule_json


async def create_schedule(ctx: RequestContext) -> Response:
    ctx.require_queue(ctx.body["queue"])
    schedule = await ctx.services.schedules.create(ctx.body)
    return JSONResponse(
        schedule_json(schedule),
        status_code=201,
        headers={"Location": f"/v1/schedules/{schedule.id}"},
    )


async def list_schedules(ctx: RequestContext) -> Response:
    schedules, next_cursor = await ctx.services.schedules.list_page(
        ctx.params.get("cursor"), ctx.params.get("limit", 100), ctx.principal.allows_queue
    )
    return JSONResponse(
        {"schedules": [schedule_json(s) for s in schedules], "next_cursor": next_cursor}
    )


async def get_schedule(ctx: RequestContext) -> Response:
    schedule = await ctx.services.schedules.get(ctx.params["schedule_id"], ctx.require_queue)
    return JSONResponse(schedule_json(schedule))


async def update_schedule(ctx: RequestContext) -> Response:
    schedule = await ctx.services.schedules.update(
        ctx.params["schedule_id"], ctx.body, ctx.require_queue
    )
    return JSONResponse(schedule_json(schedule))


async def delete_schedule(ctx: RequestContext) -> Response:
    await ctx.services.schedules.delete(ctx.params["schedule_id"], ctx.require_queue)
    return Response(status_code=204)
