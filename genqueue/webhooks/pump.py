"""WebhookPump: turns the store's events into webhook deliveries, in every API process.

It follows ``Store.watch`` from a cursor kept in the store, so events that happened while
every API process was down are still turned into deliveries when one starts again. Each
event of a task whose webhook asks for it becomes a delivery row whose id is the event's
(``envelope.py``), inserted only if absent: several API processes following the same feed
make one row per event. A task's last event of a finished batch with a webhook asking for
``batch.finished`` makes that delivery (one per batch, by the same rule). ``task.progress``
and ``task.preview`` are thinned to one per ``progress_interval_s`` per task, judged by the
events' own times, so processes that saw the same events agree.

If the cursor is older than the events the store keeps (``EventsExpiredError``), what
happened in between is lost to webhooks: that is logged as an error and counted
(``genqueue_webhook_feed_gaps_total``), and the pump goes on from now.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from typing import TypeVar

from genqueue.aio import stop_tasks
from genqueue.contracts import Store
from genqueue.errors import OUTAGE_ERRORS, EventsExpiredError, TaskNotFoundError
from genqueue.events import Feed, Order, event_order
from genqueue.metrics import Metrics
from genqueue.models import Event, EventType, Task
from genqueue.retry import OUTAGE_BACKOFF
from genqueue.settings import WebhookSettings
from genqueue.webhooks.envelope import batch_delivery, task_delivery
from genqueue.webhooks.records import BATCH_FINISHED, WebhookDelivery, WebhookTarget
from genqueue.webhooks.targets import TASK_EVENTS

log = logging.getLogger(__name__)

CACHED = 100_000  # targets of tasks (and of batches) remembered; a task's never changes
SAVE_EVERY_S = 1.0  # the cursor is saved this often while it moves
THINNED = frozenset({EventType.PROGRESS, EventType.PREVIEW})
K = TypeVar("K")
V = TypeVar("V")


def _remember(cache: OrderedDict[K, V], key: K, value: V) -> V:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > CACHED:
        cache.popitem(last=False)
    return value


class WebhookPump:
    """Events in, delivery rows out; ``wake`` is set whenever it made some."""

    def __init__(
        self, store: Store, settings: WebhookSettings, metrics: Metrics, wake: asyncio.Event
    ) -> None:
        self._store = store
        self._settings = settings
        self._metrics = metrics
        self._wake = wake
        self._tasks: OrderedDict[str, WebhookTarget | None] = OrderedDict()
        self._batches: OrderedDict[str, WebhookTarget | None] = OrderedDict()
        self._thinned: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._top: Order | None = None  # the newest event handled
        self._top_id: str | None = None
        self._saved: str | None = None

    async def run(self) -> None:
        """Follow the feed until cancelled; after an outage, resume after the last event
        handled (an event is handled once its deliveries are stored)."""
        saver = asyncio.create_task(self._save_every(SAVE_EVERY_S), name="genqueue-webhook-cursor")
        failures = 0
        try:
            while True:
                feed: Feed | None = None
                try:
                    feed = await self._open()
                    failures = 0
                    async for event in feed:
                        await self._handle(event)
                        self._handled(event.id)
                    error = "the feed ended"
                except Exception as exc:  # an outage, mostly: reopen after a pause
                    error = str(exc) or type(exc).__name__
                finally:
                    if feed is not None:
                        with contextlib.suppress(Exception):
                            await feed.aclose()
                failures += 1
                (log.warning if failures == 1 else log.debug)("webhook pump: %s", error)
                await asyncio.sleep(OUTAGE_BACKOFF.delay_s(min(failures, 64)))
        finally:
            await stop_tasks(saver)
            with contextlib.suppress(*OUTAGE_ERRORS):
                await self._save()

    async def _open(self) -> Feed:
        after = self._top_id or await self._store.webhooks.cursor()
        if after is not None:
            try:
                return await self._store.watch(after=after)
            except EventsExpiredError as exc:
                log.error(
                    "webhook pump: cannot resume after event %s (%s); events since then"
                    " made no webhook deliveries; going on from now",
                    after,
                    exc,
                )
                self._metrics.webhook_feed_gaps.inc()
                self._top = None
        return await self._store.watch()

    def _handled(self, event_id: str) -> None:
        key = event_order(event_id)
        if self._top is None or key > self._top:
            self._top, self._top_id = key, event_id

    async def _save_every(self, period_s: float) -> None:
        while True:
            await asyncio.sleep(period_s)
            with contextlib.suppress(*OUTAGE_ERRORS):
                await self._save()

    async def _save(self) -> None:
        top = self._top_id
        if top is not None and top != self._saved:
            await self._store.webhooks.save_cursor(top)
            self._saved = top

    async def _handle(self, event: Event) -> None:
        """The deliveries ``event`` owes, stored. A store outage propagates (the event is
        handled again once the feed is back); anything else is logged and the event
        skipped, so one bad record cannot stop every webhook."""
        try:
            made = await self._deliveries(event)
        except OUTAGE_ERRORS:
            raise
        except Exception:
            log.exception("webhook pump: event %s of task %s skipped", event.id, event.task_id)
            return
        if made:
            created = await self._store.webhooks.add(made)
            self._metrics.webhook_made.inc(len(created))
            self._wake.set()

    async def _deliveries(self, event: Event) -> list[WebhookDelivery]:
        if event.type not in TASK_EVENTS:
            return []  # a kind's own events (diagnosis.alert, ...) are not offered
        made = []
        target, task = await self._task_target(event.task_id)
        if target is not None and event.type in target.events and self._due(event):
            try:
                task = task or await self._store.get(event.task_id)
            except TaskNotFoundError:
                return []
            made.append(task_delivery(event, task, target))
        if event.status.finished:
            for kind in THINNED:
                self._thinned.pop((event.task_id, kind), None)
            if event.batch_id is not None:
                made += await self._batch_finished(event.batch_id, event)
        return made

    async def _task_target(self, task_id: str) -> tuple[WebhookTarget | None, Task | None]:
        """The task's webhook (remembered), and the task if it was read just now."""
        if task_id in self._tasks:
            return self._tasks[task_id], None
        try:
            task = await self._store.get(task_id)
        except TaskNotFoundError:  # purged since
            return _remember(self._tasks, task_id, None), None
        return _remember(self._tasks, task_id, task.webhook), task

    async def _batch_finished(self, batch_id: str, event: Event) -> list[WebhookDelivery]:
        target = self._batches.get(batch_id)
        if batch_id not in self._batches or (
            target is not None and BATCH_FINISHED in target.events
        ):
            try:
                batch = await self._store.get_batch(batch_id)
            except TaskNotFoundError:
                _remember(self._batches, batch_id, None)
                return []
            target = _remember(self._batches, batch_id, batch.webhook)
            if target is not None and BATCH_FINISHED in target.events and batch.finished:
                return [batch_delivery(batch, target, event.at)]
        return []

    def _due(self, event: Event) -> bool:
        """Whether a thinned event is far enough from the last one of its task delivered."""
        if event.type not in THINNED:
            return True
        key, at = (event.task_id, event.type), event.at.timestamp()
        last = self._thinned.get(key)
        if last is not None and at - last < self._settings.progress_interval_s:
            return False
        _remember(self._thinned, key, at)
        return True
