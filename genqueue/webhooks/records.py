"""The records of webhook delivery: pure data, shared by models, stores and the API."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

BATCH_FINISHED = "batch.finished"


class WebhookTarget(BaseModel):
    """Where a task's (or a batch's) events go, and which ones: stored with the task, checked
    at submit (``targets.py``), the default events already filled in."""

    model_config = ConfigDict(frozen=True)

    url: str
    events: list[str]


class DeliveryState(StrEnum):
    """``pending`` until an attempt is answered 2xx (``delivered``), the attempts or the time
    run out (``failed``), or the target resolves to an address not allowed (``refused``)."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
    REFUSED = "refused"


class WebhookAttempt(BaseModel):
    """One POST of a delivery: when, the HTTP status (None if no answer), why it failed."""

    model_config = ConfigDict(frozen=True)

    at: datetime
    status: int | None = None
    error: str | None = None
    duration_s: float = 0.0


class WebhookDelivery(BaseModel):
    """One message owed to one webhook, durable in the store. ``id`` is its ``webhook-id``,
    the same on every attempt; ``body`` the exact bytes every attempt sends (JSON text)."""

    model_config = ConfigDict(frozen=True)

    id: str
    task_id: str | None = None
    batch_id: str | None = None
    url: str
    event: str
    body: str
    state: DeliveryState = DeliveryState.PENDING
    attempts: int = 0
    next_attempt_at: datetime | None = None
    created_at: datetime
    log: list[WebhookAttempt] = Field(default_factory=list)
