"""The consume loop of the pull brokers (SQLite, Redis, PostgreSQL), written once.

A pull broker has messages in a table or a sorted set that a consumer takes with a receipt and
a visibility deadline. What is the same on every such backend lives here: fetch up to the
prefetch bound, hand deliveries out one by one, wait for a wake-up when there is nothing to
take, keep the deadline of every held delivery moving while this process lives, and give back
on close what was fetched but never handed out. Each broker composes a :class:`Puller` and
supplies only its I/O as a :class:`PullSource`: its fetch, settle and touch statements or
scripts, and its wake-up (a doorbell, pub/sub, NOTIFY).

Outages are not handled here: a fetch that fails ends the iterator with the backend's
``BackendUnavailableError`` and the worker, which owns outage survival for every broker, opens
a new one when the backend is back. Held deliveries outlive the iterator that fetched them:
the puller (one per broker object) keeps them visible until they are settled, so a consumer
reopened after an outage does not see the tasks still running here delivered again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from genqueue.aio import stop_tasks
from genqueue.errors import BackendUnavailableError

log = logging.getLogger(__name__)

FALLBACK_POLL_S = 0.5  # an idle consumer looks anyway this often (every wake-up is a hint)

Key = int | str


@dataclass(frozen=True)
class Fetched:
    """One message a fetch took: its backend key (row id or message id) and what it carries."""

    key: Key
    task_id: str
    queue: str
    priority: int = 0


class Bell(Protocol):
    """A consumer's wake-up: ``arm`` before looking for work, so a ring while looking is kept."""

    def arm(self) -> None: ...

    async def wait(self, timeout_s: float) -> None:
        """Return when rung since the last ``arm``, or after ``timeout_s``."""


class PullSource(Protocol):
    """A pull broker's I/O, for :class:`Puller`. Every method raises
    ``BackendUnavailableError`` when the server cannot be reached."""

    async def fetch(
        self, queues: Sequence[str], n: int, receipt: str, visibility_s: float
    ) -> tuple[list[Fetched], float]:
        """Take up to ``n`` due messages under ``receipt`` until ``visibility_s`` from now,
        best first; with none, also the seconds until the next delayed one is due (or
        ``FALLBACK_POLL_S`` when there is none)."""
        ...

    async def settle(self, delivery: PullDelivery, delay_s: float | None) -> None:
        """Acknowledge (``delay_s`` None: forget the message) or give back (deliver again after
        ``delay_s``), fenced by the receipt so a stale holder changes nothing."""

    async def touch(self, held: Sequence[PullDelivery], visibility_s: float) -> None:
        """Push the visibility deadline of held deliveries (still holding their receipt)."""

    def bell(self) -> contextlib.AbstractAsyncContextManager[Bell]:
        """A wake-up for one consumer, rung when something is published or given back."""
        ...


@dataclass(eq=False)
class PullDelivery:
    """One fetched message; ``ack``/``nack`` are fenced by the fetch's receipt."""

    puller: Puller = field(repr=False)
    key: Key
    receipt: str
    task_id: str
    queue: str
    priority: int = 0
    _done: bool = field(default=False, repr=False)

    async def ack(self) -> None:
        if not self._done:
            self._done = True
            await self.puller.settle(self, None)

    async def nack(self, delay_s: float = 0.0) -> None:
        if not self._done:
            self._done = True
            await self.puller.settle(self, max(0.0, delay_s))


class Puller:
    """The consume loop and the held deliveries of one pull broker object."""

    def __init__(self, source: PullSource, visibility_s: float) -> None:
        self.source = source
        self.visibility_s = visibility_s
        self.held: dict[Key, PullDelivery] = {}
        self._settled = asyncio.Event()
        self._upkeep: asyncio.Task[None] | None = None

    async def deliveries(
        self, queues: Sequence[str], prefetch: int
    ) -> AsyncGenerator[PullDelivery, None]:
        """The ``Broker.consume`` iterator: at most ``prefetch`` of its own unsettled at once."""
        limit = max(1, prefetch)
        mine: set[Key] = set()
        buffer: deque[PullDelivery] = deque()
        if self._upkeep is None or self._upkeep.done():
            self._upkeep = asyncio.create_task(self._keep_visible(), name="genqueue-visibility")
        try:
            async with self.source.bell() as bell:
                while True:
                    if buffer:
                        yield buffer.popleft()
                        continue
                    mine.intersection_update(self.held)
                    if len(mine) >= limit:
                        self._settled.clear()
                        await self._settled.wait()
                        continue
                    bell.arm()
                    receipt = secrets.token_hex(8)
                    rows, due_in = await self.source.fetch(
                        queues, limit - len(mine), receipt, self.visibility_s
                    )
                    for row in rows:
                        delivery = PullDelivery(
                            self, row.key, receipt, row.task_id, row.queue, row.priority
                        )
                        self.held[row.key] = delivery
                        mine.add(row.key)
                        buffer.append(delivery)
                    if not rows:
                        await bell.wait(min(FALLBACK_POLL_S, max(0.0, due_in)))
        finally:
            for delivery in buffer:  # fetched, never handed out: give them back now
                with contextlib.suppress(BackendUnavailableError):
                    await delivery.nack()

    async def settle(self, delivery: PullDelivery, delay_s: float | None) -> None:
        # No longer kept visible from here on: if the statement fails, the deadline lapses
        # and the message is delivered again.
        if self.held.get(delivery.key) is delivery:
            del self.held[delivery.key]
        self._settled.set()
        await self.source.settle(delivery, delay_s)

    async def _keep_visible(self) -> None:
        """Push the deadline of every held delivery forward while this process lives."""
        while True:
            await asyncio.sleep(self.visibility_s / 3)
            held = list(self.held.values())
            if not held:
                continue
            # In an outage the worker hears of it from its own calls; lapsed rows come back.
            with contextlib.suppress(BackendUnavailableError):
                await self.source.touch(held, self.visibility_s)

    async def aclose(self) -> None:
        """Stop keeping deliveries visible (the broker is closing)."""
        if self._upkeep is not None:
            await stop_tasks(self._upkeep)


class Chime:
    """Wake-ups fanned out to every consumer of one broker object (pub/sub, NOTIFY)."""

    def __init__(self) -> None:
        self._events: set[asyncio.Event] = set()

    def ring(self) -> None:
        for event in self._events:
            event.set()

    @contextlib.asynccontextmanager
    async def bell(self) -> AsyncIterator[Bell]:
        event = asyncio.Event()
        self._events.add(event)
        try:
            yield _EventBell(event)
        finally:
            self._events.discard(event)


@dataclass
class _EventBell:
    event: asyncio.Event

    def arm(self) -> None:
        self.event.clear()

    async def wait(self, timeout_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.event.wait(), timeout_s)
