"""Expiry at the API (``genqueue/expiry.py``): reads of a task whose results expired answer 410
Gone with ``{"error": "expired", ...}``, before the sweeper purges its record (by its
``finished_at``) and after (by the store's tombstone). Only to whoever may see the task: for
another user a purged task is a 404 like any unknown id, so tombstones leak nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

from genqueue.api.auth import Principal, check_owner
from genqueue.api.routes.uploads import check_artifact_owner
from genqueue.api.runtime import Runtime
from genqueue.errors import TaskNotFoundError
from genqueue.expiry import check_not_expired, expired_error, expires_at
from genqueue.models import Task

UPLOAD_PREFIX = "u-"  # artifact ids of uploads (api/routes/uploads.py), not tasks

# The artifact route's 200 header, as the OpenAPI documents it.
EXPIRES_HEADER = {
    "Expires": {
        "description": "when the task's artifacts stop being served (HTTP date); absent for"
        " uploads and unfinished tasks",
        "schema": {"type": "string"},
    }
}


async def raise_if_buried(runtime: Runtime, caller: Principal, task_id: str) -> None:
    """410 if retention purged ``task_id`` lately (its tombstone is kept) and ``caller`` may
    see it; otherwise return, and the caller answers its 404."""
    tombstone = await runtime.store.tombstone(task_id)
    if tombstone is not None and (caller.sees_all or tombstone.user == caller.user):
        raise expired_error(task_id, tombstone.expired_at, runtime.settings.retention)


async def fresh_owned_task(runtime: Runtime, caller: Principal, task_id: str) -> Task:
    """The task; 404 (as for an unknown id) when ``caller`` may not see it; 410 when its
    results expired, purged or not."""
    try:
        task = await runtime.store.get(task_id)
    except TaskNotFoundError:
        await raise_if_buried(runtime, caller, task_id)
        raise
    check_owner(caller, task.user, "task", task_id)
    check_not_expired(task, runtime.settings.retention)
    return task


async def artifact_expiry(
    runtime: Runtime, caller: Principal, task_id: str, name: str
) -> datetime | None:
    """May ``caller`` read ``task_id``'s artifact ``name``: 404 if not (unknown, or someone
    else's), 410 once the task's results expired; else when they will (None for uploads and
    unfinished tasks). Operators also read files kept under ids that are no task."""
    if task_id.startswith(UPLOAD_PREFIX):
        if not caller.sees_all:
            await check_artifact_owner(runtime, caller, task_id, name)
        return None
    missing = TaskNotFoundError(f"no artifact {name!r} for task {task_id!r}")
    try:
        task = await runtime.store.get(task_id)
    except TaskNotFoundError:
        await raise_if_buried(runtime, caller, task_id)
        if caller.sees_all:
            return None
        raise missing from None
    if not caller.sees_all and task.user != caller.user:
        raise missing
    check_not_expired(task, runtime.settings.retention)
    return expires_at(task, runtime.settings.retention)


def expires_headers(at: datetime | None) -> dict[str, str]:
    """``Expires`` as an HTTP date, when there is one."""
    return {} if at is None else {"Expires": format_datetime(at.astimezone(UTC), usegmt=True)}
