"""Wire models of the HTTP API (what clients send and receive). Pydantic only, no FastAPI, so
the Python client shares them."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from genqueue.models import Batch, EventType, Progress, Task, TaskStatus, WorkerInfo
from genqueue.webhooks.records import WebhookTarget

NAME = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$"
# How far ahead a task may be scheduled. Broker delays must stay representable: RabbitMQ
# takes a wait queue's TTL as a 32-bit count of milliseconds (about 49.7 days).
MAX_DELAY_S = 30 * 86400.0
# http(s), then a host (genqueue/webhooks/targets.py checks the rest).
WEBHOOK_URL = r"^[Hh][Tt][Tt][Pp][Ss]?://[^\s/?#]+([/?#]\S*)?$"


def _not_a_boolean(value: Any) -> Any:
    # Python counts True as 1: without this, `"priority": true` would pass for an integer.
    if isinstance(value, bool):
        raise ValueError("a whole number, not true or false")
    return value


# An integer of a request body: a whole number (2.0 too, as JSON Schema says), never a boolean.
WireInt = Annotated[int, BeforeValidator(_not_a_boolean)]


class WebhookCreate(BaseModel):
    """Where to POST a task's events, signed (docs/webhooks.md). Whether the host may be
    called (public addresses only, unless allowed) is checked at submit: 422 ``webhook.url``."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        min_length=1,
        max_length=2048,
        pattern=WEBHOOK_URL,
        examples=["https://example.com/hooks/genqueue"],
    )
    events: list[EventType] | None = Field(
        None,
        min_length=1,
        max_length=32,
        description="task event types; default: the terminal ones",
    )


class BatchWebhookCreate(WebhookCreate):
    """A batch's webhook: ``batch.finished`` once all its tasks ended, and the task events
    asked for, for its tasks that have no webhook of their own."""

    events: list[EventType | Literal["batch.finished"]] | None = Field(  # type: ignore[assignment]
        None,
        min_length=1,
        max_length=32,
        description="task event types and batch.finished; default: the terminal ones and"
        " batch.finished",
    )


class TaskCreate(BaseModel):
    """POST /v1/tasks body."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(min_length=1, max_length=128, examples=["image.generate"])
    payload: dict[str, Any] = Field(default_factory=dict, examples=[{"prompt": "a red fox"}])
    user: str | None = Field(None, pattern=NAME)
    priority: WireInt = Field(0, ge=-1000, le=1000, description="higher runs first")
    queue: str | None = Field(None, pattern=NAME, description="defaults to the kind's queue")
    delay_s: float | None = Field(
        None,
        ge=0,
        le=MAX_DELAY_S,
        allow_inf_nan=False,
        description="not started before this many seconds from now (not with run_at)",
    )
    run_at: AwareDatetime | None = Field(
        None,
        description="not started before this time, with a zone (not with delay_s); past: now",
        examples=["2026-12-01T12:00:00Z"],
    )
    start_by: AwareDatetime | None = Field(
        None,
        description="not started by then: it ends `expired` instead of running late",
    )
    cancel_after_s: float | None = Field(
        None,
        gt=0,
        allow_inf_nan=False,
        description="a run longer than this many seconds is stopped and ends `cancelled`",
    )
    webhook: WebhookCreate | None = Field(None, description="POST its events there, signed")

    @field_validator("payload")
    @classmethod
    def _finite_numbers(cls, payload: dict[str, Any]) -> dict[str, Any]:
        # Python's JSON parser accepts NaN and Infinity; JSON does not, and they would be
        # stored as null. Refuse them, naming where they are.
        bad = _non_finite(payload, "payload")
        if bad:
            raise ValueError(f"{bad} is NaN or Infinity, which JSON does not allow")
        return payload

    @field_validator("run_at", "start_by")
    @classmethod
    def _representable_in_utc(cls, when: datetime | None) -> datetime | None:
        # 9999-12-31T23:59:59-14:00 is a valid time in its zone but past year 9999 in UTC,
        # where the routes put it (it answered 500): refuse it here, naming the field.
        if when is None:
            return None
        try:
            return when.astimezone(UTC)
        except OverflowError:
            raise ValueError("out of range: outside the years 1 to 9999 in UTC") from None


def _non_finite(value: Any, path: str) -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return path
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, item in items:
        found = _non_finite(item, f"{path}.{key}")
        if found:
            return found
    return None


class TaskLinks(BaseModel):
    self: str
    wait: str
    events: str
    cancel: str


class Eta(BaseModel):
    """When a queued task should start and a queued or running one finish, estimated from its
    position, the live worker slots of its queue, the limit of its resource and the measured
    run lengths of its kind (``genqueue/eta.py``). Recomputed on every read."""

    starts_at: datetime | None = None
    start_in_s: float | None = None
    finishes_at: datetime | None = None
    finish_in_s: float | None = None


class TaskPublic(BaseModel):
    """A task as the API shows it."""

    id: str
    kind: str
    queue: str
    status: TaskStatus
    position: int | None = Field(None, description="1 = next to start; null unless queued")
    progress: Progress
    payload: dict[str, Any]
    user: str | None
    priority: int
    batch_id: str | None
    attempts: int
    max_attempts: int
    result: dict[str, Any] | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    worker_id: str | None
    cancel_requested: bool
    # Named as the store names it: besides a delay_s or run_at at submit, a retry's backoff
    # sets it too, so it is "not before", not "scheduled at".
    not_before: datetime | None = Field(
        None, description="not started before this: a delay, a run_at, or a retry's backoff"
    )
    start_by: datetime | None = Field(None, description="not started by then: ends `expired`")
    cancel_after_s: float | None = Field(None, description="a longer run is stopped")
    resource: str | None = Field(None, description="the shared limit a run takes a permit of")
    waiting_for: str | None = Field(
        None, description="queued and parked until a permit of this resource is free"
    )
    batch_size: int | None = Field(
        None,
        description="how many tasks its last run was executed with in one call of a batched"
        " kind (not the submitted batch of batch_id); null if that run was not batched",
    )
    eta: Eta | None = Field(
        None, description="estimated start and finish; null when nothing serves its queue yet"
    )
    preview: str | None = Field(
        None,
        description="a running task's latest live preview as a data URL (one task read or"
        " event-stream snapshot; null in listings)",
    )
    expires_at: datetime | None = Field(
        None,
        description="when its result and artifacts stop being served (410 Gone after):"
        " GENQUEUE_RETENTION after it finished; null until it finishes",
    )
    webhook: WebhookTarget | None = Field(None, description="where its events are POSTed")
    cached: bool = Field(
        False,
        description="true on a submit answered from the result cache: this is the earlier"
        " task of the same kind and payload, not a new one (nothing was run)",
    )
    links: TaskLinks

    @classmethod
    def of(
        cls,
        task: Task,
        position: int | None = None,
        eta: Eta | None = None,
        preview: str | None = None,
        expires_at: datetime | None = None,
    ) -> TaskPublic:
        base = f"/v1/tasks/{task.id}"
        return cls(
            **task.model_dump(exclude={"lease_expires_at", "idempotency_key", "weight"}),
            position=position,
            eta=eta,
            preview=preview,
            expires_at=expires_at,
            links=TaskLinks(
                self=base,
                wait=f"{base}/wait",
                events=f"/v1/events?task_id={task.id}",
                cancel=f"{base}/cancel",
            ),
        )


class TaskPage(BaseModel):
    items: list[TaskPublic]
    next_cursor: str | None


class BatchPage(BaseModel):
    items: list[BatchPublic]
    next_cursor: str | None


class BatchCreate(BaseModel):
    """POST /v1/batches body: tasks submitted together, stored all or none."""

    model_config = ConfigDict(extra="forbid")

    tasks: list[TaskCreate] = Field(min_length=1)
    user: str | None = Field(None, pattern=NAME)
    webhook: BatchWebhookCreate | None = Field(
        None, description="batch.finished, and the events of its tasks that have none of their own"
    )


class BatchPublic(BaseModel):
    id: str
    user: str | None
    size: int
    counts: dict[TaskStatus, int]
    finished: bool
    created_at: datetime
    task_ids: list[str] = Field(default_factory=list)
    webhook: WebhookTarget | None = None
    links: dict[str, str]

    @classmethod
    def of(cls, batch: Batch, task_ids: list[str] | None = None) -> BatchPublic:
        base = f"/v1/batches/{batch.id}"
        return cls(
            id=batch.id,
            user=batch.user,
            size=batch.size,
            counts={s: batch.counts.get(s, 0) for s in TaskStatus},
            finished=batch.finished,
            created_at=batch.created_at,
            task_ids=task_ids or [],
            webhook=batch.webhook,
            links={
                "self": base,
                "tasks": f"/v1/tasks?batch_id={batch.id}",
                "events": f"/v1/events?batch_id={batch.id}",
                "cancel": f"{base}/cancel",
            },
        )


class QueuePublic(BaseModel):
    name: str
    counts: dict[TaskStatus, int]
    depth: int = Field(description="messages waiting in the broker")
    kinds: list[str]


class BrokerQueuePublic(BaseModel):
    name: str
    ready: int = Field(description="messages waiting to be delivered")
    unacked: int | None = Field(description="delivered, not yet acknowledged (None: unknown)")
    consumers: int | None = Field(description="consumers attached (None: unknown)")
    submitted_per_s: float = Field(description="tasks submitted per second, last minute")
    finished_per_s: float = Field(description="tasks finished per second, last minute")


class BrokerPublic(BaseModel):
    backend: str
    connected: bool
    detail: str
    queues: list[BrokerQueuePublic]


class WorkerPublic(WorkerInfo):
    pass


class KindPublic(BaseModel):
    """A registered kind (GET /v1/kinds): where it runs, its policy and its payload schema."""

    name: str
    queue: str
    description: str
    timeout_s: float
    max_attempts: int
    executor: str
    payload_schema: dict[str, Any] = Field(description="the JSON Schema of the payload")


class UploadPublic(BaseModel):
    """A stored upload; pass ``{"upload": id}`` wherever a kind takes an input file."""

    id: str
    url: str
    size: int
    format: str
    width: int
    height: int


class FieldError(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer: a code, a sentence, and the fields at fault."""

    error: str
    message: str
    fields: list[FieldError] = Field(default_factory=list)


class QuotaRefusal(ErrorBody):
    """A 429 (genqueue/api/quotas.py): which limit refused the submit, its figures, and
    ``retry_after_s`` (also the ``Retry-After`` header). Nothing was stored."""

    limit: Literal["tasks_per_minute", "in_flight", "queue"]
    retry_after_s: int
    allowed: int = Field(description="the limit")
    current: int = Field(description="counted now (tasks this minute, in flight, queued)")
    requested: int = Field(description="tasks this submit asked for")
    queue: str | None = Field(None, description="the bounded queue (limit: queue)")


class Health(BaseModel):
    status: str
    store: str
    broker: str
