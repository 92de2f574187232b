"""/v1/batches: tasks submitted together (all or none), their aggregate status, the list of
them newest first, cancel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from genqueue.api.deps import DispatcherDep, RuntimeDep, StoreDep
from genqueue.api.routes.tasks import task_request
from genqueue.api.schemas import BatchCreate, BatchPage, BatchPublic
from genqueue.dispatch import TaskRequest
from genqueue.errors import FieldProblem, InvalidInputError
from genqueue.models import utcnow

router = APIRouter(prefix="/v1/batches", tags=["batches"])


@router.post("", status_code=201, response_model=BatchPublic)
async def submit_batch(body: BatchCreate, runtime: RuntimeDep) -> BatchPublic:
    """Submit many tasks at once; a bad item refuses the whole batch, naming the item."""
    limit = runtime.settings.max_batch
    if len(body.tasks) > limit:
        raise InvalidInputError([FieldProblem("tasks", f"at most {limit} tasks per batch")])
    now = utcnow()
    requests: list[TaskRequest] = []
    problems: list[FieldProblem] = []
    for i, item in enumerate(body.tasks):
        try:
            requests.append(task_request(item, now))
        except InvalidInputError as exc:
            problems += [FieldProblem(f"tasks.{i}.{p.field}", p.message) for p in exc.problems]
    if problems:
        raise InvalidInputError(problems)
    batch, tasks = await runtime.dispatcher.submit_batch(requests, body.user)
    return BatchPublic.of(batch, [t.id for t in tasks])


@router.get("", response_model=BatchPage)
async def list_batches(
    store: StoreDep,
    user: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: str | None = None,
) -> BatchPage:
    """Batches with their counts, newest first, all or one user's; follow ``next_cursor``."""
    page = await store.list_batches(user, limit, cursor)
    return BatchPage(items=[BatchPublic.of(b) for b in page.batches], next_cursor=page.next_cursor)


@router.get("/{batch_id}", response_model=BatchPublic)
async def get_batch(batch_id: str, store: StoreDep) -> BatchPublic:
    """Counts per status; ``finished`` once every task has."""
    return BatchPublic.of(await store.get_batch(batch_id))


@router.post("/{batch_id}/cancel", response_model=BatchPublic)
async def cancel_batch(batch_id: str, dispatcher: DispatcherDep) -> BatchPublic:
    """Cancel every task of the batch that has not finished."""
    return BatchPublic.of(await dispatcher.cancel_batch(batch_id))
