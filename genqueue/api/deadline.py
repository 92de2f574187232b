"""A deadline on the backend calls an API request makes.

Drivers notice a dead server at once (connection refused) but a stalled one (a paused process,
a dropped network path) only after their own timeouts, and asyncpg has none on queries. A
request waiting that long looks to its client like a hung API. Behind this wrapper every
coroutine method of the store or broker answers within ``deadline_s`` or raises
``BackendUnavailableError`` (the API's 503), naming the backend. The call is cancelled but not
waited for: unwinding a call to a stalled server can itself stall.

The API's own background work (sweeper) uses the backends unwrapped: it may take its time.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from genqueue.errors import BackendUnavailableError

B = TypeVar("B")
T = TypeVar("T")

DEADLINE_S = 5.0
SQLITE_MARGIN_S = 5.0  # beyond SQLite's busy timeout (see with_deadline)
ENGINES = {
    "sqlite": "SQLite",
    "redis": "Redis",
    "rediss": "Redis",
    "postgresql": "PostgreSQL",
    "postgres": "PostgreSQL",
    "amqp": "RabbitMQ",
    "amqps": "RabbitMQ",
}


class _Deadline:
    """Wraps a backend; the attributes that are coroutine methods get the deadline."""

    def __init__(self, backend: object, name: str, deadline_s: float) -> None:
        self._backend = backend
        self._name = name
        self._deadline_s = deadline_s

    def __getattr__(self, attr: str) -> Any:
        value = getattr(self._backend, attr)
        if not inspect.iscoroutinefunction(value):
            return value
        bounded = functools.wraps(value)(functools.partial(self._bounded, value))
        setattr(self, attr, bounded)  # built once: later lookups find it without coming here
        return bounded

    async def _bounded(
        self, method: Callable[..., Coroutine[Any, Any, Any]], *args: Any, **kwargs: Any
    ) -> Any:
        try:
            return await answer_within(method(*args, **kwargs), self._deadline_s)
        except TimeoutError:
            raise BackendUnavailableError(
                f"{self._name} did not answer within {self._deadline_s:g} s"
            ) from None


async def answer_within(call: Awaitable[T], timeout_s: float) -> T:
    """``call``'s result, or ``TimeoutError`` after ``timeout_s``. Unlike
    ``asyncio.wait_for``, it does not wait for the abandoned call to unwind."""
    future = asyncio.ensure_future(call)
    try:
        done, _ = await asyncio.wait({future}, timeout=timeout_s)
    except asyncio.CancelledError:
        _abandon(future)
        raise
    if not done:
        _abandon(future)
        raise TimeoutError(f"no answer within {timeout_s:g} s")
    return future.result()


def _abandon(call: asyncio.Future[Any]) -> None:
    call.cancel()
    # Retrieve its outcome whenever it ends, so that it is not reported as never retrieved.
    call.add_done_callback(lambda f: f.cancelled() or f.exception())


def with_deadline(backend: B, url: str, deadline_s: float = DEADLINE_S) -> B:
    """``backend`` (a Store or a Broker), its calls bounded by ``deadline_s``. The embedded
    SQLite file cannot stall the way a server can: its calls wait for the write lock up to
    their own busy timeout, and a deadline shorter than that answered 503 to calls that were
    only queued behind busy workers (seen after a worker was SIGKILLed under load); so there
    the deadline is that timeout, plus a margin."""
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        from genqueue.backends.sqlite.db import busy_timeout_s

        deadline_s = max(deadline_s, busy_timeout_s(url) + SQLITE_MARGIN_S)
    return cast(B, _Deadline(backend, ENGINES.get(scheme, scheme), deadline_s))
