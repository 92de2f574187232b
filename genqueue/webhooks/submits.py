"""A submit's ``webhook`` field, checked (``targets.py``) and put on the dispatcher's request."""

from __future__ import annotations

import dataclasses

from genqueue.api.schemas import BatchWebhookCreate, WebhookCreate
from genqueue.dispatch import TaskRequest
from genqueue.settings import WebhookSettings
from genqueue.webhooks.records import BATCH_FINISHED, WebhookTarget
from genqueue.webhooks.targets import submitted_target


async def with_webhook(
    request: TaskRequest,
    spec: WebhookCreate | None,
    settings: WebhookSettings,
    default: WebhookTarget | None = None,
) -> TaskRequest:
    """``request`` with the checked target of ``spec`` (else ``default``: its batch's)."""
    if spec is not None:
        target = await submitted_target(spec.url, spec.events, settings)
        return dataclasses.replace(request, webhook=target)
    return dataclasses.replace(request, webhook=default) if default is not None else request


async def batch_targets(
    spec: BatchWebhookCreate | None, settings: WebhookSettings
) -> tuple[WebhookTarget | None, WebhookTarget | None]:
    """A batch's webhook, checked, and the part of it its tasks carry (its task events;
    None if it asks for batch.finished only)."""
    if spec is None:
        return None, None
    target = await submitted_target(spec.url, spec.events, settings, batch=True)
    task_events = [e for e in target.events if e != BATCH_FINISHED]
    tasks = WebhookTarget(url=target.url, events=task_events) if task_events else None
    return target, tasks
