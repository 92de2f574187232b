"""/v1/tasks: submit, list, get, cancel, wait, and a task's kept events."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response

from genqueue.api.auth import (
    Principal,
    PrincipalDep,
    listed_user,
    submitter,
)
from genqueue.api.cached import CacheControl, cached_hit
from genqueue.api.deps import RuntimeDep
from genqueue.api.errors import error_responses
from genqueue.api.expiry import fresh_owned_task
from genqueue.api.quotas import admit
from genqueue.api.runtime import Runtime
from genqueue.api.schemas import MAX_DELAY_S, TaskCreate, TaskPage, TaskPublic
from genqueue.api.upload_owners import check_upload_owners
from genqueue.contracts import Store
from genqueue.dispatch import TaskRequest
from genqueue.errors import FieldProblem, InvalidInputError
from genqueue.events import EventFilter
from genqueue.expiry import expires_at, without_expired_result
from genqueue.models import Event, EventType, Task, TaskFilter, TaskStatus, utcnow
from genqueue.previews import Preview
from genqueue.webhooks.submits import with_webhook

router = APIRouter(prefix="/v1/tasks", tags=["tasks"])

TASK_EVENTS_MAX = 1000  # per read; also how far back a running task's preview is looked for

LOCATION = {
    "Location": {"description": "the task's URL", "schema": {"type": "string"}, "required": True}
}
# Reads of one task: unknown id, results expired (genqueue/api/expiry.py), store down.
ONE_TASK = error_responses(404, 410, 503)

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="the same key returns the same task",
    ),
]


def task_request(
    body: TaskCreate, now: datetime, idempotency_key: str | None = None
) -> TaskRequest:
    """The dispatcher's request for ``body``: ``delay_s`` or ``run_at`` become ``not_before``.
    The dispatcher checks the deadlines against each other; this checks what only the wire
    has (fields named as the API names them, relative to the task)."""
    not_before: datetime | None = None
    if body.delay_s is not None and body.run_at is not None:
        message = "give at most one of delay_s, run_at"
        raise InvalidInputError([FieldProblem("delay_s", message), FieldProblem("run_at", message)])
    if body.delay_s is not None:
        not_before = now + timedelta(seconds=body.delay_s)
    elif body.run_at is not None:
        not_before = body.run_at.astimezone(UTC)
        if (not_before - now).total_seconds() > MAX_DELAY_S:
            days = MAX_DELAY_S / 86400
            raise InvalidInputError([FieldProblem("run_at", f"at most {days:g} days ahead")])
    return TaskRequest(
        kind=body.kind,
        payload=body.payload,
        user=body.user,
        priority=body.priority,
        queue=body.queue,
        idempotency_key=idempotency_key,
        not_before=not_before,
        start_by=body.start_by.astimezone(UTC) if body.start_by else None,
        cancel_after_s=body.cancel_after_s,
    )


async def owned_task(runtime: Runtime, caller: Principal, task_id: str) -> Task:
    """The task, or 404 (as for an unknown id) when ``caller`` may not see it, or 410 when
    its results expired."""
    return await fresh_owned_task(runtime, caller, task_id)


def owned_request(caller: Principal, request: TaskRequest) -> TaskRequest:
    """``request`` as ``caller`` may make it: its user decided by :func:`submitter`, and a
    user key's Idempotency-Key kept apart from every other user's (one user's key never
    finds another's task)."""
    user = submitter(caller, request.user)
    key = request.idempotency_key
    if key is not None and not caller.sees_all and caller.user is not None:
        key = f"u{len(caller.user)}:{caller.user}:{key}"
    return dataclasses.replace(request, user=user, idempotency_key=key)


async def public(runtime: Runtime, task: Task, *, with_preview: bool = False) -> TaskPublic:
    """A task as the API shows it: with its place in line and its estimated times, and
    (``with_preview``, for reads of one task) a running task's latest preview."""
    queued = task.status == TaskStatus.QUEUED
    position = await runtime.store.position(task.id) if queued else None
    running = with_preview and task.status == TaskStatus.RUNNING
    preview = await latest_preview(runtime.store, task.id) if running else None
    eta = await runtime.estimator.of(task, position)
    retention = runtime.settings.retention
    shown = without_expired_result(task, retention)  # a listing's, until the purge
    return TaskPublic.of(shown, position, eta, preview, expires_at(task, retention))


async def latest_preview(store: Store, task_id: str) -> str | None:
    """The current run's latest ``task.preview`` as a data URL; None if this run has shown
    none yet (the store keeps one preview per task, which may be an earlier attempt's)."""
    for event in reversed(await store.task_events(task_id, TASK_EVENTS_MAX)):
        if event.type == EventType.STARTED:
            return None
        if event.type == EventType.PREVIEW:
            try:
                preview = Preview.from_event(event)
            except ValueError:
                return None
            return f"data:{preview.content_type};base64,{event.data['data']}"
    return None


@router.post(
    "",
    status_code=201,
    response_model=TaskPublic,
    responses={
        201: {"description": "stored and queued", "headers": LOCATION},
        200: {
            "model": TaskPublic,
            "description": "replayed: the task made earlier with this Idempotency-Key; or"
            " (`cached: true`) the earlier task of a deterministic kind with the same"
            " payload, answered from the result cache without running",
            "headers": LOCATION,
        },
        **error_responses(403, 409, 429, 503),
    },
)
async def submit(
    body: TaskCreate,
    runtime: RuntimeDep,
    response: Response,
    caller: PrincipalDep,
    http: Request,
    idempotency_key: IdempotencyKey = None,
    cache_control: CacheControl = None,
) -> TaskPublic:
    """Submit a task; answers with its id, status, queue position, estimated start and the
    URLs to follow it."""
    request = owned_request(caller, task_request(body, utcnow(), idempotency_key))
    request = await with_webhook(request, body.webhook, runtime.settings.webhooks)
    await check_upload_owners(runtime, caller, [request])
    hit = await cached_hit(http, runtime, request, cache_control)
    if hit is not None:
        response.status_code = 200
        response.headers["Location"] = f"/v1/tasks/{hit.id}"
        return (await public(runtime, hit)).model_copy(update={"cached": True})
    await admit(runtime, caller, [request])
    task, created = await runtime.dispatcher.submit(request)
    if not created:
        response.status_code = 200
    response.headers["Location"] = f"/v1/tasks/{task.id}"
    return await public(runtime, task)


@router.get("", response_model=TaskPage, responses=error_responses(503))
async def list_tasks(
    runtime: RuntimeDep,
    caller: PrincipalDep,
    user: str | None = None,
    status: TaskStatus | None = None,
    kind: str | None = None,
    batch_id: str | None = None,
    queue: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    # A row number: at most 18 digits, so it fits every store's 64-bit integer.
    cursor: Annotated[str | None, Query(pattern=r"^\d{1,18}$")] = None,
) -> TaskPage:
    """Tasks, newest first, filtered; follow ``next_cursor`` for the next page. A user key
    lists its own tasks only."""
    user, any_match = listed_user(caller, user)
    if not any_match:
        return TaskPage(items=[], next_cursor=None)
    where = TaskFilter(user=user, status=status, kind=kind, batch_id=batch_id, queue=queue)
    page = await runtime.store.list_tasks(where, limit, cursor)
    return TaskPage(
        items=[await public(runtime, t) for t in page.tasks], next_cursor=page.next_cursor
    )


@router.get("/{task_id}", response_model=TaskPublic, responses=ONE_TASK)
async def get_task(task_id: str, runtime: RuntimeDep, caller: PrincipalDep) -> TaskPublic:
    """Status, queue position, estimated start and finish, progress, result or error, and a
    running task's latest preview."""
    return await public(runtime, await owned_task(runtime, caller, task_id), with_preview=True)


@router.get("/{task_id}/events", response_model=list[Event], responses=ONE_TASK)
async def task_events(
    task_id: str,
    runtime: RuntimeDep,
    caller: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=TASK_EVENTS_MAX)] = 500,
) -> list[Event]:
    """The task's kept events (minutes of them: the record keeps the rest), oldest first,
    the newest ``limit`` of them; only its latest ``task.preview``. The history before
    following ``/v1/events?task_id=``; drop the frames already read here by ``id``."""
    await owned_task(runtime, caller, task_id)  # 404 for an unknown task, not an empty history
    return await runtime.store.task_events(task_id, limit)


@router.post("/{task_id}/cancel", response_model=TaskPublic, responses=ONE_TASK)
async def cancel(task_id: str, runtime: RuntimeDep, caller: PrincipalDep) -> TaskPublic:
    """Cancel: a queued task never starts; a running one is stopped. Idempotent."""
    await owned_task(runtime, caller, task_id)
    return await public(runtime, await runtime.dispatcher.cancel(task_id))


@router.get("/{task_id}/wait", response_model=TaskPublic, responses=ONE_TASK)
async def wait(
    task_id: str,
    runtime: RuntimeDep,
    caller: PrincipalDep,
    timeout: Annotated[float, Query(ge=0, le=300, description="seconds")] = 30.0,
) -> TaskPublic:
    """Long poll: answers as soon as the task finishes, or with its state at ``timeout``."""
    await owned_task(runtime, caller, task_id)
    return await public(runtime, await wait_finished(runtime, task_id, timeout))


async def wait_finished(runtime: Runtime, task_id: str, timeout_s: float) -> Task:
    """The task once it finished, or as it stands after ``timeout_s`` (from the event hub,
    no polling). ``TaskNotFoundError`` for an unknown id."""
    store = runtime.store
    async with runtime.hub.subscribe(EventFilter(task_id=task_id)) as sub:
        task = await store.get(task_id)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while not task.status.finished:
                    event = await sub.queue.get()
                    if event.status.finished:
                        task = await store.get(task_id)
        if not task.status.finished:
            task = await store.get(task_id)
    return task
