"""EventHub: one reader of ``Store.watch()`` per process, fanned out to many subscribers.

SSE streams and long-poll waiters subscribe with a filter; the hub reads the store's event feed
once, however many clients listen. A subscriber too slow to keep up loses its oldest events
(it is told by a ``lagged`` flag) rather than slowing everyone else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, field

from genqueue.contracts import Store
from genqueue.models import Event

log = logging.getLogger(__name__)

QUEUE_SIZE = 1000


@dataclass(frozen=True)
class EventFilter:
    """Which events a subscriber wants; empty means all."""

    task_id: str | None = None
    batch_id: str | None = None
    user: str | None = None

    def matches(self, event: Event) -> bool:
        return (
            (self.task_id is None or event.task_id == self.task_id)
            and (self.batch_id is None or event.batch_id == self.batch_id)
            and (self.user is None or event.user == self.user)
        )


@dataclass(eq=False)
class Subscription:
    where: EventFilter
    queue: asyncio.Queue[Event] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    lagged: bool = False

    def offer(self, event: Event) -> None:
        if self.queue.full():
            self.queue.get_nowait()
            self.lagged = True
        self.queue.put_nowait(event)


class EventHub:
    """Fan-out of the store's events to in-process subscribers."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._subs: set[Subscription] = set()
        self._reader: asyncio.Task[None] | None = None
        self.listeners: list[Callable[[Event], None]] = []

    async def start(self) -> None:
        """Open the store's feed (so nothing committed from now on is missed), then read it."""
        feed = await self._store.watch()
        self._reader = asyncio.create_task(self._read(feed), name="genqueue-event-hub")

    async def aclose(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    async def _read(self, feed: AsyncGenerator[Event, None]) -> None:
        while True:
            try:
                async for event in feed:
                    self._dispatch(event)
            except asyncio.CancelledError:
                await feed.aclose()
                raise
            except Exception:
                log.exception("event feed failed; reopening in 1 s")
                await asyncio.sleep(1.0)
                feed = await self._store.watch()

    def _dispatch(self, event: Event) -> None:
        for sub in self._subs:
            if sub.where.matches(event):
                sub.offer(event)
        for listener in self.listeners:
            listener(event)

    @contextlib.asynccontextmanager
    async def subscribe(self, where: EventFilter) -> AsyncIterator[Subscription]:
        sub = Subscription(where)
        self._subs.add(sub)
        try:
            yield sub
        finally:
            self._subs.discard(sub)
