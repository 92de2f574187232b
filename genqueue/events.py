"""EventHub: one reader of ``Store.watch()`` per process, fanned out to many subscribers.

SSE streams and long-poll waiters subscribe with a filter; the hub reads the store's event feed
once, however many clients listen. A subscriber too slow to keep up loses its oldest events
(it is told by a ``lagged`` flag) rather than slowing everyone else; one already
``PREVIEW_BACKLOG`` events behind is offered no live previews until it catches up.

Resuming (an SSE client's ``Last-Event-ID``): the events a subscriber missed come from a feed
of its own, ``Store.watch(after=id)``, while the hub holds its live events back; once that
replay reaches what the hub has dispatched, the subscriber switches to the live events,
skipping by id the ones the replay already gave, and its own feed is closed. So a resumed
stream costs a store feed only until it has caught up. When the hub's feed fails (an
outage), the hub reopens it after the newest event it dispatched, so its subscribers see no
gap either.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, field

from genqueue.aio import stop_tasks
from genqueue.contracts import Store
from genqueue.errors import BackendUnavailableError, EventsExpiredError
from genqueue.models import Event, EventType
from genqueue.retry import OUTAGE_BACKOFF

log = logging.getLogger(__name__)

QUEUE_SIZE = 1000
# A subscriber this far behind gets no live previews (task.preview, up to ~33 KB each) until
# it catches up: they would only deepen its lag, a newer one supersedes each, and the queue's
# memory stays that of small events.
PREVIEW_BACKLOG = 50
STABLE_S = 5.0  # a feed open this long has recovered: its next failure is a new outage

Order = tuple[int, ...]
Feed = AsyncGenerator[Event, None]


def event_order(event_id: str) -> Order:
    """Sort key of an event id: ids grow in commit order in every store (SQLite and
    PostgreSQL integers, Redis ``ms-seq``). ``ValueError`` if it is not an event id."""
    parts = event_id.split("-")
    if len(parts) > 2 or not all(part.isdigit() for part in parts):
        raise ValueError(f"not an event id: {event_id!r}")
    return tuple(int(part) for part in parts)


# Events of other tasks that may move a queued task in its line: one ahead starts or leaves,
# or one comes back into line (a retry keeps its place, ahead of tasks that came since).
LINE_MOVES = frozenset(
    {EventType.STARTED, EventType.CANCELLED, EventType.EXPIRED, EventType.RETRYING}
)


@dataclass(frozen=True)
class EventFilter:
    """Which events a subscriber wants; empty means all. ``line`` adds every task's
    ``LINE_MOVES`` events, whatever the other fields say: a follower of one queued task
    needs them to tell when its place may have changed (events carry no queue, so the
    follower reads its place again rather than judge each event)."""

    task_id: str | None = None
    batch_id: str | None = None
    user: str | None = None
    line: bool = False

    def matches(self, event: Event) -> bool:
        if self.line and event.type in LINE_MOVES:
            return True
        return (
            (self.task_id is None or event.task_id == self.task_id)
            and (self.batch_id is None or event.batch_id == self.batch_id)
            and (self.user is None or event.user == self.user)
        )


@dataclass(eq=False)
class _Replay:
    """A resuming subscriber's catch-up: its own feed, and the hub's live events held back
    until that feed has reached them."""

    after: Order
    since: Order | None  # the newest event the hub had dispatched when the subscriber came
    feed: Feed | None = None
    pending: asyncio.Task[Event] | None = None  # the feed's next event, being read
    live_top: Order | None = None  # the newest event the hub dispatched since
    held: dict[str, Event] = field(default_factory=dict)  # live, not replayed yet
    sent: set[str] = field(default_factory=set)  # replayed, not seen live yet

    def caught_up(self, key: Order) -> bool:
        """Whether the replay, now at ``key``, has reached the hub: everything the hub had
        dispatched before (up to ``since``) is replayed, and the hub has this one too."""
        reached_hub = self.live_top is not None and key <= self.live_top
        return reached_hub and (self.since is None or key >= self.since)


@dataclass(eq=False)
class Subscription:
    """One subscriber: its filter and the events waiting for it; read them with ``next``."""

    where: EventFilter
    queue: asyncio.Queue[Event] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    lagged: bool = False
    _nudge: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    _replay: _Replay | None = field(default=None, repr=False)
    _skip: set[str] = field(default_factory=set, repr=False)  # replayed; live copy to come

    def offer(self, event: Event) -> None:
        if event.type == EventType.PREVIEW and self.queue.qsize() >= PREVIEW_BACKLOG:
            return
        if self.queue.full():
            self.queue.get_nowait()
            self.lagged = True
        self.queue.put_nowait(event)
        self._nudge.set()

    def mark_lagged(self) -> None:
        """Events may have been lost: let the reader know at once, not at the next event."""
        self.lagged = True
        self._nudge.set()

    def deliver(self, event: Event, key: Order) -> None:
        """A live event from the hub (``key``: its order)."""
        replay = self._replay
        if replay is None:
            if event.id in self._skip:
                self._skip.discard(event.id)
            elif self.where.matches(event):
                self.offer(event)
            return
        replay.live_top = key if replay.live_top is None else max(replay.live_top, key)
        if event.id in replay.sent:
            replay.sent.discard(event.id)
        elif key > replay.after and self.where.matches(event):
            replay.held[event.id] = event

    async def next(self, timeout_s: float) -> Event | None:
        """The next event: the replayed ones first when resuming, then live ones. None after
        ``timeout_s`` without one, or at once while ``lagged`` is set (the reader says so and
        clears it). Raises what the replay's feed raises (``BackendUnavailableError``)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not self.lagged:
            if not self.queue.empty():
                return self.queue.get_nowait()
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            if self._replay is not None and self._replay.feed is not None:
                event = await self._next_replayed(self._replay, remaining)
                if event is not None:
                    return event
                continue
            self._nudge.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._nudge.wait(), remaining)
        return None

    def _hold(self, after: Order, since: Order | None) -> None:
        self._replay = _Replay(after, since)

    def _replay_from(self, feed: Feed) -> None:
        assert self._replay is not None
        self._replay.feed = feed
        # Read ahead at once: the feed's cleanup only runs once the generator has started.
        self._replay.pending = asyncio.create_task(_next_of(feed))

    async def _next_replayed(self, replay: _Replay, timeout_s: float) -> Event | None:
        """One event of the replay feed if it is for this subscriber (else None), switching
        to the live events once the replay has caught up with the hub."""
        assert replay.feed is not None
        if replay.pending is None:
            replay.pending = asyncio.create_task(_next_of(replay.feed))
        done, _ = await asyncio.wait({replay.pending}, timeout=timeout_s)
        if not done:
            return None
        task, replay.pending = replay.pending, None
        event = task.result()
        key = event_order(event.id)
        wanted = key > replay.after and self.where.matches(event)
        if replay.held.pop(event.id, None) is None and wanted:
            replay.sent.add(event.id)
        if replay.caught_up(key):
            await self._go_live()
        return event if wanted else None

    async def _go_live(self) -> None:
        """End the replay: the held live events follow, then every new one."""
        replay, self._replay = self._replay, None
        if replay is None:
            return
        self._skip = replay.sent
        for event in replay.held.values():
            self.offer(event)
        await _close_feed(replay)

    async def aclose(self) -> None:
        replay, self._replay = self._replay, None
        if replay is not None:
            await _close_feed(replay)


async def _next_of(feed: Feed) -> Event:
    try:
        return await anext(feed)
    except StopAsyncIteration:
        raise BackendUnavailableError("the store's event feed ended") from None


async def _close_feed(replay: _Replay) -> None:
    pending, replay.pending = replay.pending, None
    if pending is not None:
        if not pending.done():
            await asyncio.sleep(0)  # let a read-ahead created just now enter the feed first
        await stop_tasks(pending)
    if replay.feed is not None:
        with contextlib.suppress(Exception):
            await replay.feed.aclose()


class EventHub:
    """Fan-out of the store's events to in-process subscribers."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._subs: set[Subscription] = set()
        self._reader: asyncio.Task[None] | None = None
        self._top: Order | None = None  # the newest event dispatched
        self._top_id: str | None = None
        self.listeners: list[Callable[[Event], None]] = []

    async def start(self) -> None:
        """Open the store's feed (so nothing committed from now on is missed), then read it.
        With the store down, the reader opens it in the background once the store is back."""
        feed: Feed | None
        try:
            feed = await self._store.watch()
        except BackendUnavailableError as exc:
            log.warning("event feed: %s; opening it once the store answers", exc)
            feed = None
        self._reader = asyncio.create_task(self._read(feed), name="genqueue-event-hub")

    async def aclose(self) -> None:
        if self._reader is not None:
            await stop_tasks(self._reader)

    async def _read(self, feed: Feed | None) -> None:
        """Dispatch the feed's events; when it fails, reopen it after the newest event seen,
        pausing longer after each failure. An outage is logged once when it starts and once
        when the feed is open again; one that fails again within ``STABLE_S`` of reopening
        (a flapping server) is the same outage."""
        failures = 0
        lost_at: float | None = None if feed is not None else time.monotonic()
        opened_at = -math.inf  # the first failure is always news
        try:
            while True:
                if feed is None:
                    try:
                        feed = await self._reopen()
                    except Exception as exc:
                        log.debug("event feed: still down: %s", exc)
                        failures += 1
                        await asyncio.sleep(OUTAGE_BACKOFF.delay_s(min(failures, 64)))
                        continue
                    opened_at = time.monotonic()
                    if lost_at is not None:
                        log.warning("event feed: open again after %.1f s", opened_at - lost_at)
                        lost_at = None
                try:
                    async for event in feed:
                        self._dispatch(event)
                    error = "it ended"
                except Exception as exc:
                    error = str(exc) or type(exc).__name__
                with contextlib.suppress(Exception):
                    await feed.aclose()
                feed = None
                if time.monotonic() - opened_at >= STABLE_S:
                    failures = 0
                    lost_at = time.monotonic()
                    resume = f"after event {self._top_id}" if self._top_id else "from now"
                    log.warning("event feed lost (%s); reopening it %s", error, resume)
                else:
                    log.debug("event feed lost again (%s)", error)
                failures += 1
                await asyncio.sleep(OUTAGE_BACKOFF.delay_s(min(failures, 64)))
        finally:
            if feed is not None:
                await feed.aclose()

    async def _reopen(self) -> Feed:
        """The feed again, after the newest event dispatched; from now if the store no longer
        keeps that one or none was seen yet, and then subscribers are told they may have
        missed events (``lagged``)."""
        if self._top_id is not None:
            try:
                return await self._store.watch(after=self._top_id)
            except EventsExpiredError as exc:
                log.warning("event feed: %s; going on from now", exc)
        feed = await self._store.watch()
        for sub in self._subs:
            sub.mark_lagged()
        return feed

    def _dispatch(self, event: Event) -> None:
        key = event_order(event.id)
        if self._top is None or key > self._top:
            self._top, self._top_id = key, event.id
        for sub in self._subs:
            sub.deliver(event, key)
        for listener in self.listeners:
            listener(event)

    @contextlib.asynccontextmanager
    async def subscribe(
        self, where: EventFilter, after: str | None = None
    ) -> AsyncIterator[Subscription]:
        """Events matching ``where`` from now on; with ``after`` (an event id), the ones after
        it come first. If the store no longer keeps ``after``, the subscription starts
        ``lagged``. ``BackendUnavailableError`` if the store cannot replay now."""
        sub = Subscription(where)
        replaying = after is not None and self._begin_resume(sub, after)
        self._subs.add(sub)
        try:
            if replaying:
                assert after is not None
                try:
                    sub._replay_from(await self._store.watch(after=after))
                except EventsExpiredError:
                    await sub._go_live()
                    sub.mark_lagged()
            yield sub
        finally:
            self._subs.discard(sub)
            await sub.aclose()

    def _begin_resume(self, sub: Subscription, after: str) -> bool:
        """Whether ``sub`` needs a replay; if so its live events are held from now on."""
        try:
            key = event_order(after)
        except ValueError:
            sub.mark_lagged()
            return False
        if key == self._top:  # the subscriber has everything this hub has dispatched
            return False
        sub._hold(key, self._top)
        return True
