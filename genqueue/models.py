"""The records of genqueue: pure data, no I/O, no references to a store or a broker."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from genqueue.webhooks.records import WebhookTarget


def utcnow() -> datetime:
    """The one clock of the models: timezone-aware UTC."""
    return datetime.now(UTC)


def from_epoch(value: float) -> datetime:
    """Backends keep float epoch seconds; models show aware datetimes."""
    return datetime.fromtimestamp(value, UTC)


def maybe_from_epoch(value: float | None) -> datetime | None:
    return None if value is None else from_epoch(value)


class TaskStatus(StrEnum):
    """The lifecycle: queued -> running -> succeeded | failed | cancelled (running -> queued on
    retry or a lost lease; queued -> cancelled; queued -> expired when ``start_by`` passed
    before it started)."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"

    @property
    def finished(self) -> bool:
        return self in FINISHED


FINISHED = frozenset(
    {TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.EXPIRED}
)


class Progress(BaseModel):
    """How far a running task is: a fraction in 0..1 and a human message."""

    model_config = ConfigDict(frozen=True)

    fraction: float = Field(0.0, ge=0.0, le=1.0)
    message: str = ""


class NewTask(BaseModel):
    """What the Dispatcher hands the store to create: validated, defaults resolved."""

    model_config = ConfigDict(frozen=True)

    id: str
    kind: str
    queue: str
    payload: dict[str, Any]
    user: str | None = None
    priority: int = 0
    batch_id: str | None = None
    idempotency_key: str | None = None
    max_attempts: int = 1
    # The upstream whose shared concurrency limit the run takes a permit of (Kind.resource).
    resource: str | None = None
    # Not claimable before this (a delayed or scheduled task, a retry's backoff); None: now.
    not_before: datetime | None = None
    # Not started by this time: the task ends ``expired`` instead of running late.
    start_by: datetime | None = None
    # A run longer than this after it started is stopped and the task ends cancelled.
    cancel_after_s: float | None = None
    # Its user's share of the queue against other users' (fair share; GENQUEUE_FAIR_WEIGHTS).
    weight: float = Field(1.0, gt=0)
    # The model its run loads (Kind.model, from the payload): workers holding it warm get it
    # first (warm-model affinity, genqueue/worker/affinity.py). None: any worker alike.
    model: str | None = None
    # Its payload's digest when its kind is deterministic (genqueue/result_cache.py): an
    # identical submission of the same user may be answered with this task's result.
    cache_key: str | None = None
    # Where its events are POSTed (genqueue/webhooks), shown only to whoever sees the task.
    webhook: WebhookTarget | None = None


class Task(NewTask):
    """One unit of work, as the store holds it: what was asked for, and where it stands."""

    status: TaskStatus = TaskStatus.QUEUED
    progress: Progress = Progress()
    attempts: int = 0
    result: dict[str, Any] | None = None
    error: str | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    worker_id: str | None = None
    lease_expires_at: datetime | None = None
    cancel_requested: bool = False
    # Queued and parked until a permit of this resource is free (``Store.claim`` -> Waiting).
    waiting_for: str | None = None
    # How many tasks its last run was executed with in one call of a batched kind (Batching;
    # not the submitted Batch of batch_id). None when that run was not batched or it has not
    # run. Set by a finish whose outcome tells it (Succeeded, Failed, Requeue); Cancelled and
    # Throttled do not, so they leave it as it was.
    batch_size: int | None = None


# How long a purged task's tombstone is kept (GENQUEUE_EXPIRED_KEPT_S): its owner's reads
# answer 410 Gone rather than 404 that long after retention took it (genqueue/expiry.py).
EXPIRED_KEPT_S = 7 * 86400.0


class Tombstone(BaseModel):
    """What retention leaves of a purged task for ``EXPIRED_KEPT_S``: whose it was and when its
    results expired, so the API can tell its owner "gone" instead of "never existed"."""

    model_config = ConfigDict(frozen=True)

    task_id: str
    user: str | None
    expired_at: datetime


class Batch(BaseModel):
    """A group of tasks submitted together; its status is the count of its tasks per status."""

    model_config = ConfigDict(frozen=True)

    id: str
    user: str | None = None
    created_at: datetime
    size: int
    counts: dict[TaskStatus, int] = Field(default_factory=dict)
    webhook: WebhookTarget | None = None  # batch.finished and its tasks' events (webhooks)

    @property
    def finished(self) -> bool:
        return sum(self.counts.get(s, 0) for s in FINISHED) >= self.size


class WorkerStatus(StrEnum):
    ONLINE = "online"
    DEGRADED = "degraded"  # alive and heartbeating, but cannot reach a backend (see reason)
    OFFLINE = "offline"
    STOPPED = "stopped"


class WorkerInfo(BaseModel):
    """A worker process as the registry sees it, refreshed by its heartbeat."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    host: str
    pid: int
    queues: list[str]
    concurrency: int
    status: WorkerStatus = WorkerStatus.ONLINE
    started_at: datetime
    last_seen: datetime
    running: list[str] = Field(default_factory=list)
    succeeded: int = 0
    failed: int = 0
    reason: str | None = None  # why it is degraded; None in every other status
    # Models it holds loaded now (warm-model affinity), as its last heartbeat reported them.
    models: list[str] = Field(default_factory=list)


class QueueStats(BaseModel):
    """Counts of one queue's tasks per status."""

    model_config = ConfigDict(frozen=True)

    queue: str
    counts: dict[TaskStatus, int] = Field(default_factory=dict)


class TaskFilter(BaseModel):
    """What GET /v1/tasks may filter on; all optional, combined with AND."""

    model_config = ConfigDict(frozen=True)

    user: str | None = None
    status: TaskStatus | None = None
    kind: str | None = None
    batch_id: str | None = None
    queue: str | None = None


class EventType(StrEnum):
    QUEUED = "task.queued"
    STARTED = "task.started"
    PROGRESS = "task.progress"
    RETRYING = "task.retrying"
    SUCCEEDED = "task.succeeded"
    FAILED = "task.failed"
    CANCELLED = "task.cancelled"
    CANCEL_REQUESTED = "task.cancel_requested"
    EXPIRED = "task.expired"
    PREVIEW = "task.preview"  # a live picture of the run (genqueue/previews.py)


class Event(BaseModel):
    """Something that happened to a task, for live streams (SSE) and waiters."""

    model_config = ConfigDict(frozen=True)

    id: str
    type: str  # an EventType, or a kind's own event such as "diagnosis.alert"
    task_id: str
    status: TaskStatus
    at: datetime
    user: str | None = None
    batch_id: str | None = None
    kind: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class LimitChange(BaseModel):
    """One move of a resource's limit: why, when, and to what."""

    model_config = ConfigDict(frozen=True)

    at: datetime
    limit: float
    reason: str  # "start", "cut", "grow" or "configure"


class LimitStatus(BaseModel):
    """A shared limiter as ``GET /v1/limits`` shows it: the limit now (recovery counted), the
    calls holding a permit, the tasks parked for one, and how it got here."""

    model_config = ConfigDict(frozen=True)

    resource: str
    limit: float
    permits: int  # calls allowed at once: the limit rounded down
    min: float
    max: float
    in_flight: int
    waiting: int
    blocked_until: datetime | None = None  # a Retry-After holds every call back until then
    cuts: int = 0
    throttles: int = 0  # limit errors reported, whether they cut or not
    last_cut_at: datetime | None = None
    history: list[LimitChange] = Field(default_factory=list)  # oldest first, the last few


class ServiceTime(BaseModel):
    """How long runs of one kind in one queue take: moving averages kept by the store (each
    finished run moves them by a fifth of its difference), for estimated start and finish times."""

    model_config = ConfigDict(frozen=True)

    queue: str
    kind: str
    mean_s: float
    deviation_s: float  # mean absolute deviation, moving like the mean
    samples: int


class Role(StrEnum):
    """What an API key may do: ``user`` its own tasks only, ``operator`` every task and the
    cluster (queues, workers, limits), ``admin`` that and the keys (docs/security.md)."""

    USER = "user"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _ROLE_RANK[self]


_ROLE_RANK = {Role.USER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


class ApiKey(BaseModel):
    """An API key as the store keeps it: never the key itself, only its hash (the store's
    business) and this public record. ``id`` is the key's short public prefix."""

    model_config = ConfigDict(frozen=True)

    id: str
    user: str
    role: Role
    label: str | None = None
    created_at: datetime
    revoked_at: datetime | None = None
    # Submit quotas of this key (genqueue/api/quotas.py): None takes the deployment's default
    # (GENQUEUE_QUOTAS__*, role user only), 0 is unlimited.
    tasks_per_minute: int | None = Field(None, ge=0)
    in_flight: int | None = Field(None, ge=0)
