"""StatsHistory: the last hour of the cluster's activity in fixed intervals, for the console's
charts (``GET /v1/stats/history``).

Fed by the API process's event hub (every task event, whoever did the work) and by a periodic
sample of the store's queue counts. It lives in memory, per API process: it starts empty when
the process starts and forgets what is older than its window. Each interval holds counts and a
bounded sample of durations, so memory stays flat whatever the throughput.

Wait time is ``task.queued`` to ``task.started``, run time ``task.started`` to the finish, both
by the events' own timestamps; a task queued or started before this process began (or a retry,
whose wait includes its backoff) gives no sample rather than a wrong one.
"""

from __future__ import annotations

import math
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from genqueue.models import Event, EventType

BUCKET_S = 10.0
WINDOW_S = 3600.0
SAMPLES_PER_BUCKET = 256  # durations kept per interval (reservoir): enough for a median
PENDING_MAX = 100_000  # tasks remembered between their events; the oldest are dropped beyond

FINISHES: dict[str, str] = {  # finish event -> what the interval counts
    EventType.SUCCEEDED: "succeeded",
    EventType.FAILED: "failed",
    EventType.CANCELLED: "cancelled",
    EventType.EXPIRED: "cancelled",
}


@dataclass
class _Reservoir:
    """A uniform sample of at most ``SAMPLES_PER_BUCKET`` values (Algorithm R)."""

    seen: int = 0
    values: list[float] = field(default_factory=list)

    def add(self, value: float) -> None:
        self.seen += 1
        if len(self.values) < SAMPLES_PER_BUCKET:
            self.values.append(value)
        elif (slot := random.randrange(self.seen)) < SAMPLES_PER_BUCKET:
            self.values[slot] = value

    def median(self) -> float | None:
        return statistics.median(self.values) if self.values else None


@dataclass
class _Bucket:
    index: int  # start time // BUCKET_S: tells a live slot from a stale one of the ring
    finished: dict[str, int] = field(
        default_factory=lambda: {"succeeded": 0, "failed": 0, "cancelled": 0}
    )
    waits: _Reservoir = field(default_factory=_Reservoir)
    runs: _Reservoir = field(default_factory=_Reservoir)
    queued: dict[str, int] | None = None  # tasks waiting per queue, at the last sample
    running: int | None = None


@dataclass(frozen=True)
class Point:
    """One interval: what finished in it, the queues at its last sample, median durations."""

    at: float  # the interval's start, epoch seconds
    succeeded: int
    failed: int
    cancelled: int  # cancelled or expired
    queued: dict[str, int] | None  # None: no sample in this interval
    running: int | None
    wait_p50_s: float | None
    run_p50_s: float | None


class StatsHistory:
    """A ring of ``window_s / bucket_s`` intervals; ``record`` is an event hub listener."""

    def __init__(
        self,
        window_s: float = WINDOW_S,
        bucket_s: float = BUCKET_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.bucket_s = bucket_s
        self.window_s = window_s
        self._clock = clock
        self.started_at = clock()
        self._ring: list[_Bucket | None] = [None] * math.ceil(window_s / bucket_s)
        self._queued_at: dict[str, float] = {}
        self._started_at: dict[str, float] = {}

    def _bucket(self, at: float) -> _Bucket | None:
        """The interval holding ``at``, made fresh if its slot holds an older one; None if
        ``at`` is older than the window (a replayed event). A time ahead of this process's
        clock (another machine's clock running fast) counts as now."""
        now_index = math.floor(self._clock() / self.bucket_s)
        index = min(math.floor(at / self.bucket_s), now_index)
        if index <= now_index - len(self._ring):
            return None
        slot = index % len(self._ring)
        bucket = self._ring[slot]
        if bucket is None or bucket.index != index:
            bucket = self._ring[slot] = _Bucket(index)
        return bucket

    def record(self, event: Event) -> None:
        """Take in one task event (called by the hub for every event it dispatches)."""
        at = event.at.timestamp()
        if event.type == EventType.QUEUED:
            _remember(self._queued_at, event.task_id, at)
        elif event.type == EventType.STARTED:
            queued_at = self._queued_at.pop(event.task_id, None)
            _remember(self._started_at, event.task_id, at)
            if queued_at is not None and (bucket := self._bucket(at)):
                bucket.waits.add(max(0.0, at - queued_at))
        elif event.type == EventType.RETRYING:
            self._started_at.pop(event.task_id, None)
        elif event.type in FINISHES:
            self._queued_at.pop(event.task_id, None)  # cancelled before it started
            started_at = self._started_at.pop(event.task_id, None)
            if bucket := self._bucket(at):
                bucket.finished[FINISHES[event.type]] += 1
                if started_at is not None:
                    bucket.runs.add(max(0.0, at - started_at))

    def sample(self, queued: dict[str, int], running: int) -> None:
        """Record the queues as they are now: tasks waiting per queue, tasks running."""
        bucket = self._bucket(self._clock())
        if bucket is not None:
            bucket.queued = dict(queued)
            bucket.running = running

    def points(self, minutes: float = 60.0) -> list[Point]:
        """Every interval of the last ``minutes`` since this history started, oldest first,
        empty ones included (so a chart's gaps are real)."""
        now = self._clock()
        since = max(now - minutes * 60.0, self.started_at, now - self.window_s)
        first = math.floor(since / self.bucket_s)
        last = math.floor(now / self.bucket_s)
        points = []
        for index in range(max(first, last - len(self._ring) + 1), last + 1):
            bucket = self._ring[index % len(self._ring)]
            if bucket is None or bucket.index != index:
                bucket = _Bucket(index)
            points.append(
                Point(
                    at=index * self.bucket_s,
                    succeeded=bucket.finished["succeeded"],
                    failed=bucket.finished["failed"],
                    cancelled=bucket.finished["cancelled"],
                    queued=bucket.queued,
                    running=bucket.running,
                    wait_p50_s=bucket.waits.median(),
                    run_p50_s=bucket.runs.median(),
                )
            )
        return points


def _remember(times: dict[str, float], task_id: str, at: float) -> None:
    times[task_id] = at
    if len(times) > PENDING_MAX:
        del times[next(iter(times))]  # dicts keep insertion order: this is the oldest
