"""``/v1/stats/history``: the last hour of throughput, queue depth, wait and run time, in
intervals, for the console's charts.

The history is this API process's own (``genqueue/api/stats_history.py``): it starts empty when
the process starts, and is fed by the process's event hub and by a sample of the store's queue
counts every ``SAMPLE_S``. Behind a load balancer, each API process answers with what it has
seen since it started; every one sees every task event, so they agree once they are all up.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from pydantic import BaseModel, Field

from genqueue.aio import stop_tasks
from genqueue.api.runtime import Runtime
from genqueue.api.stats_history import Point, StatsHistory
from genqueue.models import TaskStatus
from genqueue.sweeper import upkeep

SAMPLE_S = 5.0  # two samples per interval, so none is left without one


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Runs inside the app's own lifespan, once the runtime (store, event hub) is open."""
    runtime: Runtime = app.state.runtime
    history = StatsHistory()
    runtime.hub.listeners.append(history.record)

    async def sample() -> None:
        stats = await runtime.store.queue_stats()
        history.sample(
            {s.queue: s.counts.get(TaskStatus.QUEUED, 0) for s in stats},
            sum(s.counts.get(TaskStatus.RUNNING, 0) for s in stats),
        )

    sampler = asyncio.create_task(upkeep("stats", SAMPLE_S, sample), name="genqueue-stats")
    app.state.stats_history = history
    try:
        yield
    finally:
        runtime.hub.listeners.remove(history.record)
        await stop_tasks(sampler)


router = APIRouter(prefix="/v1/stats", tags=["stats"], lifespan=lifespan)


def get_history(request: Request) -> StatsHistory:
    history: StatsHistory = request.app.state.stats_history
    return history


class StatsHistoryPublic(BaseModel):
    bucket_s: float = Field(description="the length of each interval, in seconds")
    started_at: datetime = Field(description="when this API process began keeping history")
    points: list[Point] = Field(
        description="intervals oldest first; `at` is each one's start in epoch seconds"
    )


@router.get("/history", response_model=StatsHistoryPublic)
async def history(
    history: Annotated[StatsHistory, Depends(get_history)],
    minutes: Annotated[float, Query(gt=0, le=60)] = 60,
) -> StatsHistoryPublic:
    """Per interval (``bucket_s``): tasks finished (succeeded, failed, cancelled or expired),
    tasks queued per queue and running at the interval's last sample (null: not sampled),
    median wait (queued to started) and run time (started to finished) of the tasks that
    started or finished in it (null: none). Since this API process started, at most
    ``minutes`` back."""
    return StatsHistoryPublic(
        bucket_s=history.bucket_s,
        started_at=datetime.fromtimestamp(history.started_at, UTC),
        points=history.points(minutes),
    )
