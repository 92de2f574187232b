"""A task's and a batch's webhook delivery log: every delivery, its state and its attempts.
Seen by whoever sees the task or batch (404 like any other read otherwise). Not gone with a
task's expired result (410): the log says what was sent, not the result."""

from __future__ import annotations

from fastapi import APIRouter

from genqueue.api.auth import PrincipalDep, check_owner
from genqueue.api.deps import StoreDep
from genqueue.api.errors import error_responses
from genqueue.api.routes.batches import owned_batch
from genqueue.webhooks.records import WebhookDelivery

router = APIRouter(tags=["webhooks"])
LOG = """ oldest first: each one's id (its `webhook-id`), event, body (the exact bytes sent),
state (pending, delivered, failed, refused), next attempt, and its attempts (time, HTTP
status or error, duration)."""


@router.get(
    "/v1/tasks/{task_id}/webhooks",
    response_model=list[WebhookDelivery],
    responses=error_responses(404, 503),
    description="The task's webhook deliveries," + LOG,
)
async def task_webhooks(
    task_id: str, store: StoreDep, caller: PrincipalDep
) -> list[WebhookDelivery]:
    task = await store.get(task_id)
    check_owner(caller, task.user, "task", task_id)
    return await store.webhooks.deliveries(task_id=task_id)


@router.get(
    "/v1/batches/{batch_id}/webhooks",
    response_model=list[WebhookDelivery],
    responses=error_responses(404, 503),
    description="The batch's webhook deliveries (batch.finished and its tasks' events)," + LOG,
)
async def batch_webhooks(
    batch_id: str, store: StoreDep, caller: PrincipalDep
) -> list[WebhookDelivery]:
    await owned_batch(store, caller, batch_id)
    return await store.webhooks.deliveries(batch_id=batch_id)
