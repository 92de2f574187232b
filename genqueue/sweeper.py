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

    async def recover(self) -> int:
        """Silent workers offline, expired leases requeued and published again."""
        store = self.dispatcher.store
        offline = await store.mark_offline(self.settings.offline_after_s)
        if offline:
            log.warning("workers offline: %s; recovering their tasks", ", ".join(offline))
        requeued = await store.requeue_expired()
        for task in requeued:
            await self.dispatcher.requeue(task)
        return len(requeued)

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
