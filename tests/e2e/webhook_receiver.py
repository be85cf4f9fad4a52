"""A scripted webhook receiver for the push e2e tests (run by uvicorn in its own process).

It verifies every delivery with the `standardwebhooks` package and appends one JSON line
per request to $RECEIVER_LOG. What it answers comes from the task's payload: `script`
is a list of answers, the n-th used for the n-th delivery of that webhook-id (the last
one repeats): "200", "503", "410", "400", "429:<seconds>" (with Retry-After),
"sleep:<seconds>" (then 200), "redirect" (307).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import Counter
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

SECRET = os.environ["RECEIVER_SECRET"]
LOG_PATH = os.environ["RECEIVER_LOG"]
deliveries_by_id: Counter[str] = Counter()
in_flight = 0


def record(entry: dict[str, Any]) -> None:
    with open(LOG_PATH, "a", encoding="utf-8") as log:
        log.write(json.dumps(entry) + "\n")


async def hook(request: Request) -> Response:
    global in_flight
    in_flight += 1
    try:
        return await answer(request, in_flight)
    finally:
        in_flight -= 1


async def answer(request: Request, concurrent: int) -> Response:
    body = await request.body()
    entry: dict[str, Any] = {
        "received_at": time.time(),
        "webhook_id": request.headers.get("webhook-id"),
        "webhook_timestamp": request.headers.get("webhook-timestamp"),
        "user_agent": request.headers.get("user-agent"),
        "host": request.headers.get("host"),
        "in_flight": concurrent,
    }
    try:
        task = Webhook(SECRET).verify(body, dict(request.headers))
    except WebhookVerificationError as exc:
        entry.update(verified=False, error=str(exc))
        record(entry)
        return JSONResponse({"error": "bad signature"}, status_code=401)
    webhook_id = entry["webhook_id"]
    deliveries_by_id[webhook_id] += 1
    script = task["payload"].get("script", ["200"])
    step = script[min(deliveries_by_id[webhook_id], len(script)) - 1]
    entry.update(verified=True, task=task, step=step, delivery=deliveries_by_id[webhook_id])
    record(entry)
    kind, _, arg = step.partition(":")
    if kind == "sleep":
        await asyncio.sleep(float(arg))
        kind = "200"
    if kind == "200":
        return JSONResponse({"handled": task["id"], "attempt": task["attempt"]})
    if kind == "429":
        return Response(status_code=429, headers={"retry-after": arg})
    if kind == "redirect":
        return Response(status_code=307, headers={"location": "http://127.0.0.1:1/elsewhere"})
    return Response(f"scripted {kind}", status_code=int(kind))


app = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
