"""/v1/limits: the shared concurrency limit of each upstream resource (AIMD, limiter.py).

Workers configure a resource's limiter when they start serving a kind that declares it, so a
resource appears here once a worker for it has run. The figures are the store's, shared by
every worker on every machine.
"""

from __future__ import annotations

from fastapi import APIRouter

from genqueue.api.deps import StoreDep
from genqueue.api.errors import error_responses
from genqueue.errors import TaskNotFoundError
from genqueue.models import LimitStatus

router = APIRouter(prefix="/v1/limits", tags=["limits"])


class LimitNotFoundError(TaskNotFoundError):
    """No limiter for that resource (HTTP 404, like an unknown task)."""


@router.get("", response_model=list[LimitStatus], responses=error_responses(503))
async def list_limits(store: StoreDep) -> list[LimitStatus]:
    """Every configured limiter, by resource name: the limit now (recovery counted), permits,
    calls in flight, tasks waiting for a permit, cuts, Retry-After blocking, recent changes."""
    return sorted(await store.limits(), key=lambda status: status.resource)


@router.get("/{resource:path}", response_model=LimitStatus, responses=error_responses(404, 503))
async def get_limit(resource: str, store: StoreDep) -> LimitStatus:
    """One resource's limiter; 404 if no worker configured it."""
    for status in await store.limits():
        if status.resource == resource:
            return status
    raise LimitNotFoundError(f"no limit for resource {resource!r}")
