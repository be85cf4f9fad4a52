"""create_app(settings): wires the store, services, routes and background loops."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import random
import signal
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from app.api.guard import Guard
from app.api.middleware import RequestIdMiddleware
from app.api.problems import problem_response
from app.api.ratelimit import RateLimiter
from app.api.routes import build_routes, request_id_of
from app.api.spec import load_spec
from app.api.validation import item_validator
from app.auth.jwks import JwksError
from app.auth.setup import build_verifier
from app.core.clock import Clock, SystemClock
from app.core.models import QueueConfig, RetryPolicy
from app.dashboard.routes import dashboard_routes
from app.dispatch.ssrf import AllowList
from app.dispatch.webhooks import Dispatcher
from app.metrics.instruments import Metrics
from app.resources import openapi_path
from app.service.events import EventFeed
from app.service.queues import QueueService
from app.service.scheduler import Scheduler
from app.service.schedules import ScheduleService
from app.service.sweeper import Sweeper
from app.service.tasks import TaskLimits, TaskService
from app.service.waiters import Waiters
from app.settings import Settings
from app.store.base import Store
from app.store.sqlite import SqliteOptions, SqliteStore

log = logging.getLogger("taskgate")


@dataclass(frozen=True, slots=True)
class Services:
    tasks: TaskService
    queues: QueueService
    events: EventFeed
    schedules: ScheduleService


def webhook_allow_list(settings: Settings) -> AllowList:
    """The `webhook_allow` setting as an AllowList."""
    return AllowList.parse([e for e in settings.webhook_allow.split(",") if e.strip()])


def queue_defaults(settings: Settings) -> QueueConfig:
    """The server-wide defaults that queues and tasks inherit."""
    return QueueConfig(
        max_attempts=settings.default_max_attempts,
        retry=RetryPolicy(
            initial_delay_seconds=settings.default_retry_initial_seconds,
            factor=settings.default_retry_factor,
            max_delay_seconds=settings.default_retry_max_seconds,
            jitter=settings.default_retry_jitter,
        ),
        lease_seconds=settings.default_lease_seconds,
        retention_seconds=settings.retention_seconds,
    )


def rate_limiter(settings: Settings) -> RateLimiter:
    """The rate limits of the settings, per endpoint group.

    Raises:
        ValueError: a limit string or the storage URI is not usable (the message names it).
    """
    return RateLimiter(
        {
            "submit": settings.rate_limit_submit,
            "work": settings.rate_limit_work,
            "read": settings.rate_limit_read,
            "admin": settings.rate_limit_admin,
            "anonymous": settings.rate_limit_anonymous,
        },
        settings.rate_limit_storage,
    )


def build_store(settings: Settings, rng: random.Random | None = None) -> Store:
    """The store the settings name: PostgreSQL at `database_url` when it is set, else the
    SQLite file `database`. `rng` draws retry jitter (default: a fresh generator)."""
    defaults = queue_defaults(settings)
    idempotency_window_ms = settings.idempotency_window_seconds * 1000
    rng = rng or random.Random()
    if settings.database_url:
        # Imported here: psycopg adds ~0.2 s to the start of every process that never uses it.
        from app.store.postgres import PostgresOptions, PostgresStore

        return PostgresStore(
            PostgresOptions(url=settings.database_url, pool_size=settings.database_pool_size),
            defaults=defaults,
            idempotency_window_ms=idempotency_window_ms,
            rng=rng,
        )
    return SqliteStore(
        SqliteOptions(
            path=settings.database_path,
            durability=settings.durability,
            busy_timeout_ms=settings.busy_timeout_ms,
        ),
        defaults=defaults,
        idempotency_window_ms=idempotency_window_ms,
        rng=rng,
    )


def _problem_for_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    detail = {
        404: f"no route for {request.url.path}; see /docs for the API",
        405: f"{request.method} is not allowed on {request.url.path}",
    }.get(exc.status_code, str(exc.detail))
    slug, title = {
        404: ("not-found", "Not found"),
        405: ("method-not-allowed", "Method not allowed"),
    }.get(exc.status_code, ("http-error", str(exc.detail)))
    return problem_response(
        exc.status_code,
        slug,
        title,
        detail,
        request_id_of(request),
        headers=dict(exc.headers) if exc.headers else None,
    )


def _chain_sigterm(on_term: Any) -> Any:
    """Call `on_term` when SIGTERM/SIGINT arrives, then the server's own handler."""
    if threading.current_thread() is not threading.main_thread():
        return None
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def handler(signum: int, frame: Any) -> None:
        on_term()
        chained = previous.get(signal.Signals(signum))
        if callable(chained):
            chained(signum, frame)

    for sig in previous:
        signal.signal(sig, handler)
    return previous


def create_app(
    settings: Settings,
    clock: Clock | None = None,
    store: Store | None = None,
    *,
    metrics: Metrics | None = None,
    freeze_gc: bool = False,
) -> Starlette:
    """The ASGI app. The database must already be migrated (`taskgate migrate`).

    `metrics`: where the app counts (default: its own in-memory registry; a gunicorn
    worker passes `Metrics.multiprocess(...)`). `freeze_gc`: once started, hide every
    object made so far from the cyclic garbage collector (for a server process, whose
    start-up objects live as long as it does).
    """
    clock = clock or SystemClock()
    spec = load_spec(openapi_path())
    store = store or build_store(settings)
    metrics = metrics or Metrics.in_process()
    waiters = Waiters()
    webhook_allow = webhook_allow_list(settings)
    services = Services(
        tasks=TaskService(
            store,
            waiters,
            clock,
            TaskLimits(long_poll_max_s=settings.long_poll_max_seconds),
            metrics,
        ),
        queues=QueueService(store, waiters, clock, webhook_allow),
        events=EventFeed(store, waiters, settings.long_poll_max_seconds),
        schedules=ScheduleService(store, clock),
    )
    sweeper = Sweeper(
        store,
        waiters,
        clock,
        settings.worker_retention_seconds,
        metrics,
        event_retention_s=settings.event_retention_seconds,
    )
    scheduler = Scheduler(
        store, waiters, clock, settings.schedule_interval_seconds, metrics=metrics
    )
    verifier = build_verifier(settings)
    limiter = rate_limiter(settings)
    guard = Guard(verifier, limiter)
    dispatcher = (
        Dispatcher(
            store,
            services.tasks,
            services.queues,
            waiters,
            clock,
            webhook_allow,
            metrics,
            grace_s=min(settings.graceful_timeout_seconds, 10.0),
        )
        if settings.dispatch
        else None
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await asyncio.to_thread(limiter.check_storage)
        await store.open()
        loop = asyncio.get_running_loop()
        previous_handlers = _chain_sigterm(lambda: loop.call_soon_threadsafe(waiters.close))
        background = [
            asyncio.create_task(
                sweeper.run(settings.sweep_interval_seconds, settings.retention_interval_seconds)
            ),
            asyncio.create_task(
                waiters.watch_changes(store.change_marker, settings.wake_poll_seconds)
            ),
            asyncio.create_task(scheduler.run()),
        ]
        if verifier is not None and verifier.jwks is not None and verifier.jwks.is_url:
            try:
                await verifier.jwks.fetch()
            except JwksError as exc:
                log.warning("tokens of the identity provider fail until it answers: %s", exc)
        if verifier is None:
            log.warning("authentication is OFF: anyone who can reach this server can do anything")
        delivering = asyncio.create_task(dispatcher.run()) if dispatcher else None
        if freeze_gc:
            # Full collections walked every start-up object, stalling the event loop for
            # tens of ms several times a second (submit p99 at 5,000/s: ~50 ms; ~12 ms
            # with the start-up objects frozen).
            gc.collect()
            gc.freeze()
        log.info("taskgate ready", extra={"database": settings.database_label})
        try:
            yield
        finally:
            waiters.close()
            if delivering is not None and dispatcher is not None:
                # Deliveries in flight get the dispatcher's grace period, then are handed back.
                await asyncio.wait([delivering], timeout=dispatcher.grace_s + 5)
                delivering.cancel()
                await asyncio.gather(delivering, return_exceptions=True)
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            if previous_handlers:
                for sig, handler in previous_handlers.items():
                    signal.signal(sig, handler)
            await store.close()
            await limiter.close()

    api_routes = build_routes(
        spec,
        settings.max_body_bytes,
        metrics_auth=settings.metrics_auth,
        docs_auth=settings.docs_auth,
    )
    app = Starlette(
        routes=[*api_routes.routes, *dashboard_routes()],
        middleware=[
            Middleware(RequestIdMiddleware, operations=api_routes.operations, metrics=metrics)
        ],
        exception_handlers={HTTPException: _problem_for_http_exception},
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.clock = clock
    app.state.spec = spec
    app.state.store = store
    app.state.metrics = metrics
    app.state.services = services
    app.state.sweeper = sweeper
    app.state.scheduler = scheduler
    app.state.waiters = waiters
    app.state.guard = guard
    app.state.task_submit_validator = item_validator(spec, "TaskSubmit")
    return app
