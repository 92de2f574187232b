"""/v1/batches: tasks submitted together (all or none), their aggregate status, the list of
them newest first, cancel."""

from __future__ import annotations

import dataclasses
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from genqueue.api.auth import Principal, PrincipalDep, check_owner, listed_user, submitter
from genqueue.api.deps import DispatcherDep, RuntimeDep, StoreDep
from genqueue.api.errors import error_responses
from genqueue.api.input_guard import is_json
from genqueue.api.quotas import admit
from genqueue.api.routes.tasks import owned_request, task_request
from genqueue.api.schemas import BatchCreate, BatchPage, BatchPublic
from genqueue.api.upload_owners import check_upload_owners
from genqueue.contracts import Store
from genqueue.dispatch import TaskRequest
from genqueue.errors import FieldProblem, InvalidInputError
from genqueue.models import Batch, utcnow
from genqueue.webhooks.submits import batch_targets, with_webhook

router = APIRouter(prefix="/v1/batches", tags=["batches"])


async def owned_batch(store: Store, caller: Principal, batch_id: str) -> Batch:
    """The batch, or 404 (as for an unknown id) when ``caller`` may not see it."""
    batch = await store.get_batch(batch_id)
    check_owner(caller, batch.user, "batch", batch_id)
    return batch


async def counted_first(request: Request, runtime: RuntimeDep) -> None:
    """Refuse a batch over ``GENQUEUE_MAX_BATCH`` tasks by its count, before its items are
    validated: 200 000 bad items took seconds of the event loop to list in a 422 of tens of
    megabytes. FastAPI runs dependencies before it validates the body it already parsed."""
    if not is_json(request.scope):
        return  # FastAPI does not parse it: the body's validation refuses it
    body = await request.json()  # parsed (and checked by InputGuard) once: Starlette keeps it
    tasks = body.get("tasks") if isinstance(body, dict) else None
    limit = runtime.settings.max_batch
    if isinstance(tasks, list) and len(tasks) > limit:
        message = f"at most {limit} tasks per batch (GENQUEUE_MAX_BATCH), not {len(tasks)}"
        raise InvalidInputError([FieldProblem("tasks", message)])


@router.post(
    "",
    status_code=201,
    response_model=BatchPublic,
    responses=error_responses(403, 429, 503),
    dependencies=[Depends(counted_first)],
)
async def submit_batch(body: BatchCreate, runtime: RuntimeDep, caller: PrincipalDep) -> BatchPublic:
    """Submit many tasks at once; a bad item refuses the whole batch, naming the item."""
    owner = submitter(caller, body.user)
    hooks = runtime.settings.webhooks
    webhook, tasks_webhook = await batch_targets(body.webhook, hooks)
    now = utcnow()
    requests: list[TaskRequest] = []
    problems: list[FieldProblem] = []
    for i, item in enumerate(body.tasks):
        try:
            request = task_request(item, now)
            request = await with_webhook(request, item.webhook, hooks, tasks_webhook)
            user = submitter(caller, request.user or owner, "user")
            requests.append(owned_request(caller, dataclasses.replace(request, user=user)))
        except InvalidInputError as exc:
            problems += [FieldProblem(f"tasks.{i}.{p.field}", p.message) for p in exc.problems]
    if problems:
        raise InvalidInputError(problems)
    await check_upload_owners(runtime, caller, requests, prefix="tasks.")
    await admit(runtime, caller, requests)
    batch, tasks = await runtime.dispatcher.submit_batch(requests, owner, webhook)
    return BatchPublic.of(batch, [t.id for t in tasks])


@router.get("", response_model=BatchPage, responses=error_responses(503))
async def list_batches(
    store: StoreDep,
    caller: PrincipalDep,
    user: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: str | None = None,
) -> BatchPage:
    """Batches with their counts, newest first, all or one user's (a user key: its own);
    follow ``next_cursor``."""
    user, any_match = listed_user(caller, user)
    if not any_match:
        return BatchPage(items=[], next_cursor=None)
    page = await store.list_batches(user, limit, cursor)
    return BatchPage(items=[BatchPublic.of(b) for b in page.batches], next_cursor=page.next_cursor)


@router.get("/{batch_id}", response_model=BatchPublic, responses=error_responses(404, 503))
async def get_batch(batch_id: str, store: StoreDep, caller: PrincipalDep) -> BatchPublic:
    """Counts per status; ``finished`` once every task has."""
    return BatchPublic.of(await owned_batch(store, caller, batch_id))


@router.post("/{batch_id}/cancel", response_model=BatchPublic, responses=error_responses(404, 503))
async def cancel_batch(
    batch_id: str, dispatcher: DispatcherDep, store: StoreDep, caller: PrincipalDep
) -> BatchPublic:
    """Cancel every task of the batch that has not finished."""
    await owned_batch(store, caller, batch_id)
    return BatchPublic.of(await dispatcher.cancel_batch(batch_id))
