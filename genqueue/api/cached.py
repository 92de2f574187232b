"""The submit route's answer from the result cache (``genqueue/result_cache.py``): the earlier
task of the same user, kind and payload, unless the request says ``Cache-Control: no-cache``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header, Request

from genqueue.api.runtime import Runtime
from genqueue.dispatch import TaskRequest
from genqueue.metrics import Metrics
from genqueue.models import Task
from genqueue.result_cache import cached_task, no_cache

CacheControl = Annotated[
    str | None,
    Header(
        alias="Cache-Control",
        max_length=200,
        description="`no-cache`: run the task anew even when the result cache holds its result",
    ),
]


async def cached_hit(
    http: Request, runtime: Runtime, request: TaskRequest, cache_control: str | None
) -> Task | None:
    """The stored task answering ``request`` (counted in ``genqueue_cache_hits``), or None:
    submit it. ``request`` carries the user the caller submits as, so one user's hit is never
    another's task."""
    if no_cache(cache_control):
        return None
    hit = await cached_task(runtime.store, runtime.kinds, request, runtime.settings.retention)
    if hit is not None:
        metrics: Metrics = http.app.state.metrics
        metrics.cache_hits.labels(hit.kind).inc()
    return hit
