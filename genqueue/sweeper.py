"""Periodic upkeep: recover expired leases, mark silent workers offline, apply retention.

Any number of processes may run it at once (the API and every worker do): each store step is
atomic, so a lease is requeued, and republished, by exactly one of them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from genqueue.artifacts import ArtifactStore
from genqueue.dispatch import Dispatcher
from genqueue.models import Task
from genqueue.settings import Settings

log = logging.getLogger(__name__)


async def upkeep(name: str, interval_s: float, step: Callable[[], Awaitable[object]]) -> None:
    """Run ``step`` every ``interval_s`` forever; a failing step is logged, not fatal."""
    while True:
        try:
            await step()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("upkeep %s failed; trying again in %.1f s", name, interval_s)
        await asyncio.sleep(interval_s)


class Sweeper:
    """The upkeep steps, each callable on its own (tests call them directly)."""

    def __init__(self, dispatcher: Dispatcher, artifacts: ArtifactStore, settings: Settings):
        self.dispatcher = dispatcher
        self.artifacts = artifacts
        self.settings = settings
        # Requeued in the store but not yet published: kept until the broker takes them.
        self._unpublished: dict[str, Task] = {}

    async def recover(self) -> int:
        """Silent workers offline, expired leases requeued and published again."""
        store = self.dispatcher.store
        offline = await store.mark_offline(self.settings.offline_after_s)
        if offline:
            log.warning("workers offline: %s; recovering their tasks", ", ".join(offline))
        requeued = await store.requeue_expired()
        self._unpublished.update((task.id, task) for task in requeued)
        await self._publish_requeued()
        return len(requeued)

    async def _publish_requeued(self) -> None:
        """Publish what was requeued; if the broker is down, the rest waits for the next round
        (the store already says ``queued``, so without a message the task would sit forever)."""
        for task_id, task in list(self._unpublished.items()):
            await self.dispatcher.requeue(task)
            del self._unpublished[task_id]

    async def purge(self) -> int:
        """Retention: records and artifacts older than ``GENQUEUE_RETENTION``."""
        retention = self.settings.retention
        ids = await self.dispatcher.store.purge(retention)
        for task_id in ids:
            await asyncio.to_thread(self.artifacts.delete, task_id)
        await asyncio.to_thread(self.artifacts.purge, retention)
        return len(ids)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(upkeep("recover", self.settings.sweep_s, self.recover))
            group.create_task(upkeep("purge", self.settings.purge_s, self.purge))
