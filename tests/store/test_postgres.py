"""What only the PostgreSQL store has to prove: several stores (processes, hosts) on one
database claim, limit and submit correctly side by side; wake-ups travel by LISTEN and
survive losing it; the event stream never skips a change that commits late; driver
failures are StoreErrors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import psycopg
import pytest

from app.core.errors import StoreError
from app.core.models import SubmitOutcome
from app.metrics.instruments import Metrics
from app.service.submit_batcher import SubmitBatcher
from app.store.base import Store
from app.store.postgres import PostgresOptions, PostgresStore
from tests.postgres_server import PostgresServer

from .conftest import DEFAULTS, IDEMPOTENCY_WINDOW_MS
from .test_push_store import make_push_queue
from .test_store_contract import NOW, new, submit_one

pytestmark = pytest.mark.anyio

# Bounds on waiting for something another session does; never an assertion on time.
PATIENCE_S = 15.0


async def eventually(condition: Callable[[], bool]) -> None:
    """Wait until `condition()` holds (failing after PATIENCE_S)."""
    async with asyncio.timeout(PATIENCE_S):
        while not condition():
            await asyncio.sleep(0.01)


@pytest.fixture
async def store(postgres_url: str) -> AsyncIterator[Store]:
    """This module's `store`: PostgreSQL only (`store_twin` opens another on its database)."""
    backend = store_on(postgres_url)
    await backend.open()
    try:
        yield backend
    finally:
        await backend.close()


@pytest.fixture
async def session(postgres_url: str) -> AsyncIterator[psycopg.AsyncConnection[tuple[object, ...]]]:
    """A plain connection to the test's database, for transactions the test holds open."""
    async with await psycopg.AsyncConnection.connect(postgres_url) as connection:
        yield connection


def store_on(url: str, **options: float) -> PostgresStore:
    return PostgresStore(
        PostgresOptions(url=url, pool_size=4, **options),  # type: ignore[arg-type]
        DEFAULTS,
        IDEMPOTENCY_WINDOW_MS,
    )


async def insert_task(
    connection: psycopg.AsyncConnection[tuple[object, ...]], task_id: str
) -> None:
    """A queued task written by hand in the connection's open transaction."""
    await connection.execute(
        "INSERT INTO tasks (id, queue, type, payload, priority, state, max_attempts, "
        "lease_seconds, run_at, created_at, updated_at) "
        "VALUES (%s, 'q', 't', '{}', 1, 'queued', 3, 30, %s, %s, %s)",
        (task_id, NOW, NOW, NOW),
    )


# -- claims across processes ----------------------------------------------------------


async def test_concurrent_claims_of_two_stores_never_lease_a_task_twice(
    store: Store, store_twin: Store
) -> None:
    await store.submit([new() for _ in range(120)], NOW)

    async def drain(backend: Store, worker: str) -> list[str]:
        claimed: list[str] = []
        while batch := await backend.claim("q", worker, 7, None, None, NOW):
            claimed += [task.id for task in batch]
        return claimed

    results = await asyncio.gather(
        *(drain(backend, f"w{n}") for n in range(4) for backend in (store, store_twin))
    )

    every = [task_id for claimed in results for task_id in claimed]
    assert len(every) == len(set(every)) == 120
    assert sum(1 for claimed in results if claimed) > 1


async def test_claims_skip_rows_another_transaction_holds(
    store: Store, session: psycopg.AsyncConnection[tuple[object, ...]]
) -> None:
    await submit_one(store, new(run_at_ms=NOW - 2))
    await submit_one(store, new(run_at_ms=NOW - 1))
    async with session.transaction():
        await session.execute("SELECT 1 FROM tasks WHERE run_at = %s FOR UPDATE", (NOW - 2,))
        # Without SKIP LOCKED this claim would wait for the session's transaction.
        claimed = await asyncio.wait_for(store.claim("q", "w", 2, None, None, NOW), PATIENCE_S)
        assert [task.run_at_ms for task in claimed] == [NOW - 1]


async def test_push_limits_hold_for_claims_from_two_stores(store: Store, store_twin: Store) -> None:
    await make_push_queue(store, max_concurrency=3)
    await store.submit([new() for _ in range(20)], NOW)

    claims = await asyncio.gather(
        *(backend.claim_push("q", "node", 2, 60, NOW) for backend in (store, store_twin) * 6)
    )

    assert sum(len(claim.tasks) for claim in claims) == 3
    info = await store.get_queue("q", NOW)
    assert info is not None and info.counts.running == 3


async def test_one_key_submitted_by_two_stores_at_once_makes_one_task(
    store: Store, store_twin: Store
) -> None:
    for attempt in range(10):
        key = f"k-{attempt}"
        a, b = await asyncio.gather(
            store.submit([new(idempotency_key=key, request_hash="h")], NOW),
            store_twin.submit([new(idempotency_key=key, request_hash="h")], NOW),
        )
        outcomes = [a[0], b[0]]
        assert all(isinstance(o, SubmitOutcome) for o in outcomes)
        assert sorted(o.created for o in outcomes if isinstance(o, SubmitOutcome)) == [
            False,
            True,
        ]
        assert len({o.task.id for o in outcomes if isinstance(o, SubmitOutcome)}) == 1


async def test_submits_arriving_during_a_write_join_the_next_transaction(
    store: Store, session: psycopg.AsyncConnection[tuple[object, ...]]
) -> None:
    """One submit per event-loop iteration, as requests trickle in: without the batcher's
    bound each would be a transaction of its own; with it they wait for a write in flight
    and go in the next. Counted by the database: the distinct `xmin` of the rows."""
    batcher = SubmitBatcher(store, Metrics.in_process())
    submits = []
    for _ in range(60):
        submits.append(asyncio.ensure_future(batcher.submit(new(), NOW)))
        await asyncio.sleep(0)  # the next arrival comes in a later loop iteration
    outcomes = await asyncio.gather(*submits)
    assert all(isinstance(outcome, SubmitOutcome) for outcome in outcomes)
    cursor = await session.execute("SELECT count(*), count(DISTINCT xmin::text) FROM tasks")
    rows, transactions = await cursor.fetchone() or (0, 0)
    assert rows == 60
    assert transactions <= 10  # 3 here; 60 without the bound


# -- wake-ups -------------------------------------------------------------------------


async def test_a_commit_by_one_store_moves_the_marker_of_another(
    store: Store, postgres_url: str
) -> None:
    # An hour's clock: only the notification can move this one's marker in the test.
    listener = store_on(postgres_url, wake_fallback_s=3600)
    await listener.open()
    try:
        await eventually(lambda: listener.listening_for_changes)
        before = listener.change_marker()

        await submit_one(store, new())

        await eventually(lambda: listener.change_marker() != before)
    finally:
        await listener.close()


async def test_the_marker_moves_by_the_clock_while_listening_too(postgres_url: str) -> None:
    """A session can look up and hear nothing (a transaction-mode pooler drops LISTEN):
    the clock still moves the marker, so a lost notification costs a tick, not a
    long-poll's whole wait."""
    watcher = store_on(postgres_url, wake_fallback_s=0.05)
    await watcher.open()
    try:
        await eventually(lambda: watcher.listening_for_changes)
        before = watcher.change_marker()
        await eventually(lambda: watcher.change_marker() >= before + 3)  # no commit at all
        assert watcher.listening_for_changes
    finally:
        await watcher.close()


async def test_only_changes_notify(
    store: Store, postgres_url: str, session: psycopg.AsyncConnection[tuple[object, ...]]
) -> None:
    """Empty claims (pull and push) and heartbeats notify nobody: else every process's
    empty re-check would wake all the others, forever. Notifications arrive in commit
    order, so only the submit's may come before the test's own."""
    await make_push_queue(store, "hooks", max_concurrency=5, max_dispatches_per_second=100)
    await submit_one(store, new(queue="hooks"))
    (pushed,) = (await store.claim_push("hooks", "node", 1, 60, NOW)).tasks
    assert pushed.lease_token is not None
    await session.set_autocommit(True)
    await session.execute("LISTEN taskgate_changes")

    assert await store.claim("q", "w", 5, None, None, NOW) == []
    assert (await store.claim_push("hooks", "node", 5, 60, NOW)).tasks == []
    await store.heartbeat(pushed.id, pushed.lease_token, None, NOW + 1)
    await submit_one(store, new(queue="hooks", run_at_ms=NOW + 60_000))  # notifies
    await session.execute("NOTIFY taskgate_changes, 'end'")

    payloads = []
    async for notification in session.notifies(timeout=PATIENCE_S):
        payloads.append(notification.payload)
        if notification.payload == "end":
            break
    assert payloads == ["", "end"]


async def test_the_marker_moves_by_the_clock_while_listening_is_down(
    postgres_server: PostgresServer,
    postgres_url: str,
    session: psycopg.AsyncConnection[tuple[object, ...]],
) -> None:
    await session.set_autocommit(True)
    database = postgres_url.rsplit("/", 1)[1]
    watcher = store_on(postgres_url, wake_fallback_s=0.05)
    await watcher.open()
    try:
        await eventually(lambda: watcher.listening_for_changes)
        # Keep it from coming back at once: no new connections to the database for now.
        postgres_server.admin(f"ALTER DATABASE {database} ALLOW_CONNECTIONS false")
        await session.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND query = 'LISTEN taskgate_changes'"
        )
        await eventually(lambda: not watcher.listening_for_changes)
        down_at = watcher.change_marker()
        await eventually(lambda: watcher.change_marker() >= down_at + 3)

        postgres_server.admin(f"ALTER DATABASE {database} ALLOW_CONNECTIONS true")
        await eventually(lambda: watcher.listening_for_changes)  # it comes back by itself
    finally:
        await watcher.close()


# -- events ---------------------------------------------------------------------------


async def test_events_wait_for_an_earlier_transaction_that_commits_later(
    store: Store, session: psycopg.AsyncConnection[tuple[object, ...]]
) -> None:
    """The session's event is written (and sequenced) first but commits last: readers
    see nothing of the later commit until the session's is visible, then both in order."""
    start = await store.events_after(None, None, 0)
    async with session.transaction():
        await insert_task(session, "t-early")
        late = (await submit_one(store, new())).task

        withheld = await store.events_after(start.last_id, None, 10)
        assert withheld.events == [] and withheld.last_id == start.last_id

    page = await store.events_after(start.last_id, None, 10)

    assert [e.task_id for e in page.events] == ["t-early", late.id]
    assert [e.id for e in page.events] == [start.last_id + 1, start.last_id + 2]


async def test_events_of_a_younger_transaction_that_commits_later_are_not_skipped(
    store: Store,
    postgres_url: str,
    session: psycopg.AsyncConnection[tuple[object, ...]],
) -> None:
    """The older transaction writes its event after the younger one but commits first:
    a reader that took it must still get the younger one's event afterwards."""
    start = await store.events_after(None, None, 0)
    older = session
    await older.set_autocommit(True)
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as younger:
        await older.execute("BEGIN")
        await older.execute("SELECT pg_current_xact_id()")  # the lower transaction id
        await younger.execute("BEGIN")
        await insert_task(younger, "t-younger")  # the lower sequence number
        await insert_task(older, "t-older")
        await older.execute("COMMIT")

        first = await store.events_after(start.last_id, None, 10)
        assert [e.task_id for e in first.events] == ["t-older"]

        await younger.execute("COMMIT")

    second = await store.events_after(first.events[-1].id, None, 10)
    assert [e.task_id for e in second.events] == ["t-younger"]
    assert second.events[0].id == first.events[0].id + 1 == start.last_id + 2
    assert not second.gap


# -- failures -------------------------------------------------------------------------


async def test_an_unreachable_database_is_a_store_error(postgres_url: str) -> None:
    missing = store_on(postgres_url.rsplit("/", 1)[0] + "/no_such_database", connect_timeout_s=2)
    with pytest.raises(StoreError):
        await missing.open()


async def test_connections_lost_under_the_pool_fail_as_store_errors_then_recover(
    store: Store, session: psycopg.AsyncConnection[tuple[object, ...]]
) -> None:
    await session.set_autocommit(True)
    await submit_one(store, new())
    await session.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )

    failures = 0
    for _ in range(10):
        try:
            assert await store.get_queue("q", NOW) is not None
        except StoreError:
            failures += 1
        else:
            break
    assert failures >= 1
    await store.ping()
