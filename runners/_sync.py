"""A private event loop in a background thread, and typed helpers that make async methods blocking.

This is what lets the sync `Client` be a thin face over `AsyncClient` instead of a twin.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")
A = TypeVar("A")


class LoopThread:
    """An asyncio loop running forever in a daemon thread; `run` blocks on a coroutine there."""

    def __init__(self, name: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)
        self._thread.start()

    @property
    def closed(self) -> bool:
        return self._loop.is_closed()

    def run(self, coroutine: Coroutine[Any, Any, R]) -> R:
        """Run `coroutine` on the loop and return its result (or raise its exception).

        Raises:
            RuntimeError: the loop was stopped by `stop()`.
        """
        if self._loop.is_closed():
            coroutine.close()
            raise RuntimeError("the client is closed")
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result()
        except BaseException:
            # Ctrl-C (or any exit) while blocked here must not leave the request running.
            future.cancel()
            raise

    def stop(self) -> None:
        """Stop the loop, join its thread and close it (idempotent)."""
        if self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


class HasLoop(Protocol):
    """A sync face: the loop to run on and the async object it wraps."""

    @property
    def _loop_thread(self) -> LoopThread: ...

    @property
    def _async_client(self) -> Any: ...


def blocking(
    method: Callable[Concatenate[A, P], Coroutine[Any, Any, R]],
) -> Callable[Concatenate[HasLoop, P], R]:
    """A sync method that runs the async `method` of `self._async_client` on its loop."""

    @functools.wraps(method)
    def call(self: HasLoop, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return self._loop_thread.run(method(self._async_client, *args, **kwargs))

    return call


_EXHAUSTED: Any = object()


async def _close(iterator: AsyncIterator[Any]) -> None:
    # After Ctrl-C the item being fetched is still being cancelled on the loop; closing
    # the generator before that settles raises "asynchronous generator is already running".
    while getattr(iterator, "ag_running", False):
        await asyncio.sleep(0)
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()


async def _next_item(iterator: AsyncIterator[T]) -> T:
    # StopAsyncIteration cannot travel through a concurrent Future reliably: use a sentinel.
    try:
        return await anext(iterator)
    except StopAsyncIteration:
        return _EXHAUSTED  # type: ignore[no-any-return]


def blocking_iterator(
    method: Callable[Concatenate[A, P], AsyncIterator[T]],
) -> Callable[Concatenate[HasLoop, P], Iterator[T]]:
    """A sync generator that pulls each item of the async iterator `method` on the loop."""

    @functools.wraps(method)
    def iterate(self: HasLoop, /, *args: P.args, **kwargs: P.kwargs) -> Iterator[T]:
        iterator = method(self._async_client, *args, **kwargs)
        try:
            while (item := self._loop_thread.run(_next_item(iterator))) is not _EXHAUSTED:
                yield item
        finally:
            if not self._loop_thread.closed:
                self._loop_thread.run(_close(iterator))

    return iterate
