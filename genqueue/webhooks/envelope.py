"""What a webhook delivery sends: Standard Webhooks' recommended envelope
``{"type", "timestamp", "data"}``, its ``webhook-id``, and the delivery row that holds both.

The body is made once, when the delivery is made, and kept: every attempt sends the same bytes
under the same id, so a receiver can drop a repeat by id. ``data`` is the task (or batch) as
the API shows it at that moment, and for a task event ``data.event`` the event itself.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from genqueue.api.schemas import BatchPublic, TaskPublic
from genqueue.models import Batch, Event, Task, utcnow
from genqueue.webhooks.records import BATCH_FINISHED, WebhookDelivery, WebhookTarget

# Fields of TaskPublic that describe a read, not the task, or that are the target itself.
_NOT_SENT = {"position", "eta", "preview", "webhook"}


def task_delivery_id(event_id: str) -> str:
    """One delivery per event: its id is the event's (stable across retries and processes)."""
    return f"msg_{event_id}"


def batch_delivery_id(batch_id: str) -> str:
    return f"msg_batch_{batch_id}"


def timestamp(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def body(event_type: str, at: datetime, data: dict[str, Any]) -> str:
    envelope = {"type": event_type, "timestamp": timestamp(at), "data": data}
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False)


def task_data(task: Task, event: Event) -> dict[str, Any]:
    data = TaskPublic.of(task).model_dump(mode="json", exclude=_NOT_SENT)
    data["event"] = {"id": event.id, "status": event.status.value, "data": event.data}
    return data


def task_delivery(event: Event, task: Task, target: WebhookTarget) -> WebhookDelivery:
    return WebhookDelivery(
        id=task_delivery_id(event.id),
        task_id=task.id,
        batch_id=task.batch_id,
        url=target.url,
        event=event.type,
        body=body(event.type, event.at, task_data(task, event)),
        created_at=utcnow(),
    )


def batch_delivery(batch: Batch, target: WebhookTarget, at: datetime) -> WebhookDelivery:
    data = BatchPublic.of(batch).model_dump(mode="json", exclude={"webhook"})
    return WebhookDelivery(
        id=batch_delivery_id(batch.id),
        batch_id=batch.id,
        url=target.url,
        event=BATCH_FINISHED,
        body=body(BATCH_FINISHED, at, data),
        created_at=utcnow(),
    )
