"""Estimated start and finish of tasks, as the API shows them (arithmetic in ``genqueue.eta``).

What an estimate needs besides the task's position (live workers, running counts, service
times, limits) is read from the store at most four times a second and shared by every request, so a
page of 500 tasks costs one position each and nothing more.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import timedelta

from genqueue import eta
from genqueue.api.schemas import Eta
from genqueue.contracts import Store
from genqueue.models import ServiceTime, Task, TaskStatus, WorkerStatus, utcnow

REFRESH_S = 0.25  # a burst of submits reads running counts this fresh
LIVE = (WorkerStatus.ONLINE, WorkerStatus.DEGRADED)


@dataclass(frozen=True)
class Snapshot:
    taken: float  # monotonic
    capacity: dict[str, eta.Capacity]  # per queue
    times: list[ServiceTime]
    permits: dict[str, int]  # per limited resource


class Estimator:
    """Estimates for one API process."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._snapshot: Snapshot | None = None
        self._lock = asyncio.Lock()

    async def snapshot(self) -> Snapshot:
        async with self._lock:
            current = self._snapshot
            if current is None or time.monotonic() - current.taken > REFRESH_S:
                current = self._snapshot = await self._take()
            return current

    async def _take(self) -> Snapshot:
        store = self._store
        workers = await store.list_workers()
        stats = await store.queue_stats()
        times = await store.service_times()
        limits = await store.limits()
        running = {s.queue: s.counts.get(TaskStatus.RUNNING, 0) for s in stats}
        slots: dict[str, int] = {}
        for worker in workers:
            if worker.status in LIVE:
                for queue in worker.queues:
                    slots[queue] = slots.get(queue, 0) + worker.concurrency
        capacity = {
            queue: eta.Capacity(
                slots.get(queue, 0), running.get(queue, 0), eta.queue_mean(times, queue)
            )
            for queue in set(slots) | set(running)
        }
        return Snapshot(time.monotonic(), capacity, times, {s.resource: s.permits for s in limits})

    async def of(self, task: Task, position: int | None) -> Eta | None:
        """The estimate of a queued or running task; None for others, or when nothing serves
        its queue, or before any run of its queue was measured."""
        if task.status not in (TaskStatus.QUEUED, TaskStatus.RUNNING):
            return None
        snap = await self.snapshot()
        now = utcnow()
        mean = eta.kind_mean(snap.times, task.queue, task.kind)
        if task.status == TaskStatus.RUNNING:
            if task.started_at is None:
                return None
            elapsed = (now - task.started_at).total_seconds()
            left = eta.remaining_s(elapsed, task.progress.fraction, mean)
            if left is None:
                return None
            return Eta(finishes_at=now + timedelta(seconds=left), finish_in_s=left)
        capacity = snap.capacity.get(task.queue)
        if capacity is None:
            return None
        permits = snap.permits.get(task.resource) if task.resource else None
        # Not in line yet (delayed): it joins at its time, near the head.
        delay = 0.0
        if position is None and task.not_before is not None:
            delay = max(0.0, (task.not_before - now).total_seconds())
        wait = eta.start_in_s(position or 1, capacity, permits)
        if wait is None:
            return None
        start = delay + wait
        finish = None if mean is None else start + mean
        return Eta(
            starts_at=now + timedelta(seconds=start),
            start_in_s=start,
            finishes_at=None if finish is None else now + timedelta(seconds=finish),
            finish_in_s=finish,
        )
