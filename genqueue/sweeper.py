"""Periodic upkeep: recover expired leases, mark silent workers offline, publish what the outbox
owes the broker, apply retention.

Any number of processes may run it at once (the API and every worker do): each store step is
atomic, so a lease is requeued by exactly one of them, and an outbox entry is held by one relay
at a time (a message published twice is harmless: its claim fails).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from genqueue.aio import stop_tasks
from genqueue.artifacts import ArtifactStore
from genqueue.dispatch import Dispatcher
from genqueue.errors import OUTAGE_ERRORS
from genqueue.retry import OUTAGE_BACKOFF
from genqueue.settings import Settings

log = logging.getLogger(__name__)

RELAY_BATCH = 500
# A relay holds the entries it took this long (others leave them alone); if it dies or its
# publish fails, they are due again after it. Publishing a batch takes far less.
RELAY_HOLD_S = 5.0


async def upkeep(name: str, interval_s: float, step: Callable[[], Awaitable[object]]) -> None:
    """Run ``step`` every ``interval_s`` forever; a failing step is logged, not fatal. An
    outage is logged when it starts and when it ends, not on every round."""
    down_since: float | None = None
    while True:
        try:
            await step()
            if down_since is not None:
                downtime = time.monotonic() - down_since
                log.warning("upkeep %s works again after %.1f s", name, downtime)
                down_since = None
        except asyncio.CancelledError:
            raise
        except OUTAGE_ERRORS as exc:
            if down_since is None:
                log.warning("upkeep %s paused: %s", name, exc or type(exc).__name__)
                down_since = time.monotonic()
        except Exception:
            log.exception("upkeep %s failed; trying again in %.1f s", name, interval_s)
        await asyncio.sleep(interval_s)


class Sweeper:
    """The upkeep steps, each callable on its own (tests call them directly)."""

    def __init__(self, dispatcher: Dispatcher, artifacts: ArtifactStore, settings: Settings):
        self.dispatcher = dispatcher
        self.artifacts = artifacts
        self.settings = settings
        self._store_lost = False
        self._quiet_until = 0.0

    async def recover(self) -> int:
        """Silent workers offline, expired leases requeued (their messages go through the
        outbox, so a crash right after loses nothing), then the outbox relayed.

        After a store outage, every lease looks expired and every worker silent; the workers
        were only cut off. So once the store answers again, this step waits until they had
        time to report in (renewing their leases) before it judges anyone: a run that
        outlived the outage keeps its task instead of being run twice."""
        store = self.dispatcher.store
        try:
            if self._store_lost:
                await store.ping()
                self._store_lost = False
                # Workers probe the store this often at most: give them that, and a lease.
                patience = OUTAGE_BACKOFF.max_delay_s + self.settings.lease_s
                self._quiet_until = time.monotonic() + patience
            requeued = []
            if time.monotonic() >= self._quiet_until:
                offline = await store.mark_offline(self.settings.offline_after_s)
                if offline:
                    log.warning("workers offline: %s; recovering their tasks", ", ".join(offline))
                requeued = await store.requeue_expired()
            # Permits freed by expired leases, grown limits or a Retry-After that passed.
            woken = await store.wake_waiting()
        except OUTAGE_ERRORS:
            self._store_lost = True
            raise
        if requeued or woken:
            await self.relay()
        return len(requeued)

    async def relay(self) -> int:
        """Publish what the outbox owes the broker (tasks whose submitter died before
        publishing, or published while the broker was down; requeued tasks; parked tasks a
        free permit woke), then clear it."""
        store, broker = self.dispatcher.store, self.dispatcher.broker
        total = 0
        while True:
            messages = await store.take_outbox(RELAY_BATCH, RELAY_HOLD_S)
            if not messages:
                return total
            await broker.publish(messages)
            await store.clear_outbox([m.task_id for m in messages])
            total += len(messages)
            if len(messages) < RELAY_BATCH:
                return total

    async def purge(self) -> int:
        """Retention: records and artifacts older than ``GENQUEUE_RETENTION``; each purged
        task leaves a tombstone for ``GENQUEUE_EXPIRED_KEPT_S`` (410 Gone, genqueue/expiry.py)."""
        retention = self.settings.retention
        ids = await self.dispatcher.store.purge(retention, self.settings.expired_kept_s)
        for task_id in ids:
            await asyncio.to_thread(self.artifacts.delete, task_id)
        await asyncio.to_thread(self.artifacts.purge, retention)
        return len(ids)

    async def run(self) -> None:
        """The three upkeeps until cancelled. Not a TaskGroup: a cancellation swallowed inside
        a step (redis-py's ``wait_for`` on Python 3.11, see ``stop_tasks``) would leave a
        group waiting on that upkeep forever, and a stopping worker with it; ``stop_tasks``
        cancels again until each has ended."""
        steps = [
            upkeep("recover", self.settings.sweep_s, self.recover),
            upkeep("relay", self.settings.sweep_s, self.relay),
            upkeep("purge", self.settings.purge_s, self.purge),
        ]
        tasks = [asyncio.create_task(step) for step in steps]
        try:
            await asyncio.gather(*tasks)
        finally:
            # Shielded: the caller's next cancel must not leave these half stopped.
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(stop_tasks(*tasks))
