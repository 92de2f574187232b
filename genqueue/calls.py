"""The API's calls as data (method, URL, arguments, how to parse the answer), and the mapping
of error answers to genqueue exceptions: what ``Client`` and ``AsyncClient`` share, so both
send exactly the same requests and differ only in how they send them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from genqueue.api.schemas import BatchPublic, BrokerPublic, QueuePublic, TaskPage, TaskPublic
from genqueue.errors import (
    BackendUnavailableError,
    FieldProblem,
    GenqueueError,
    IdempotencyConflictError,
    InvalidInputError,
    TaskNotFoundError,
)
from genqueue.models import LimitStatus, WorkerInfo

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


def raise_for(response: httpx.Response) -> None:
    """The genqueue exception of an error answer (404 also for an unknown batch or limit)."""
    if response.is_success:
        return
    try:
        body = response.json()
    except ValueError:
        body = {"message": response.text}
    message = body.get("message", response.reason_phrase)
    match response.status_code:
        case 404:
            raise TaskNotFoundError(message)
        case 409:
            raise IdempotencyConflictError(message)
        case 422 | 400 | 413:
            fields = body.get("fields") or [{"field": "body", "message": message}]
            raise InvalidInputError([FieldProblem(f["field"], f["message"]) for f in fields])
        case 503:
            raise BackendUnavailableError(message)
        case code:
            raise GenqueueError(f"HTTP {code}: {message}")


@dataclass(frozen=True)
class Schedule:
    """When a task may start, by when it must have started, and how long it may run."""

    delay_s: float | None = None
    run_at: datetime | None = None
    start_by: datetime | None = None
    cancel_after_s: float | None = None

    def fields(self) -> dict[str, Any]:
        """The ones given, as JSON (datetimes as ISO 8601; the API refuses them without a
        zone, naming the field)."""
        return {k: wire(v) for k, v in self.__dict__.items() if v is not None}


def wire(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def task_body(
    kind: str,
    payload: dict[str, Any] | None,
    user: str | None,
    priority: int,
    queue: str | None,
    schedule: Schedule,
) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": kind, "payload": payload or {}, "priority": priority}
    if user is not None:
        body["user"] = user
    if queue is not None:
        body["queue"] = queue
    return {**body, **schedule.fields()}


def events_params(task_id: str | None, batch_id: str | None, user: str | None) -> dict[str, str]:
    params = {"task_id": task_id, "batch_id": batch_id, "user": user}
    return {k: v for k, v in params.items() if v is not None}


def list_of(model: type[M]) -> Callable[[Any], list[M]]:
    return lambda items: [model.model_validate(item) for item in items]


@dataclass(frozen=True)
class Call(Generic[T]):
    """One API call as data, so that both clients send exactly the same requests."""

    method: str
    url: str
    parse: Callable[[Any], T]
    kwargs: dict[str, Any] = field(default_factory=dict)


def submit(
    kind: str,
    payload: dict[str, Any] | None,
    user: str | None,
    priority: int,
    queue: str | None,
    idempotency_key: str | None,
    schedule: Schedule,
) -> Call[TaskPublic]:
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    body = task_body(kind, payload, user, priority, queue, schedule)
    return Call("POST", "/v1/tasks", TaskPublic.model_validate, {"json": body, "headers": headers})


def get(task_id: str) -> Call[TaskPublic]:
    return Call("GET", f"/v1/tasks/{task_id}", TaskPublic.model_validate)


def list_tasks(filters: dict[str, Any]) -> Call[TaskPage]:
    params = {k: v for k, v in filters.items() if v is not None}
    return Call("GET", "/v1/tasks", TaskPage.model_validate, {"params": params})


def wait(task_id: str, timeout_s: float) -> Call[TaskPublic]:
    return Call(
        "GET",
        f"/v1/tasks/{task_id}/wait",
        TaskPublic.model_validate,
        {"params": {"timeout": timeout_s}, "timeout": timeout_s + 10},
    )


def cancel(task_id: str) -> Call[TaskPublic]:
    return Call("POST", f"/v1/tasks/{task_id}/cancel", TaskPublic.model_validate)


def submit_batch(
    tasks: list[dict[str, Any]], user: str | None, schedule: Schedule
) -> Call[BatchPublic]:
    items = [batch_item(t, schedule) for t in tasks]
    return Call(
        "POST", "/v1/batches", BatchPublic.model_validate, {"json": {"tasks": items, "user": user}}
    )


def batch_item(task: dict[str, Any], schedule: Schedule) -> dict[str, Any]:
    """A batch's task with the batch's schedule as its default: a field of its own wins, and
    a start of its own (delay_s or run_at) replaces the batch's."""
    defaults = schedule.fields()
    if "delay_s" in task or "run_at" in task:
        defaults.pop("delay_s", None)
        defaults.pop("run_at", None)
    return {k: wire(v) for k, v in {**defaults, **task}.items()}


def get_batch(batch_id: str) -> Call[BatchPublic]:
    return Call("GET", f"/v1/batches/{batch_id}", BatchPublic.model_validate)


def cancel_batch(batch_id: str) -> Call[BatchPublic]:
    return Call("POST", f"/v1/batches/{batch_id}/cancel", BatchPublic.model_validate)


def limit(resource: str) -> Call[LimitStatus]:
    return Call("GET", f"/v1/limits/{quote(resource, safe='')}", LimitStatus.model_validate)


QUEUES = Call("GET", "/v1/queues", list_of(QueuePublic))
LIMITS = Call("GET", "/v1/limits", list_of(LimitStatus))
WORKERS = Call("GET", "/v1/workers", list_of(WorkerInfo))
# 503 while the broker is unreachable, with the same body: the caller reads ``connected``.
BROKER = Call("GET", "/v1/broker", BrokerPublic.model_validate, {"check": False})
HEALTH: Call[dict[str, Any]] = Call("GET", "/health", dict, {"check": False})
