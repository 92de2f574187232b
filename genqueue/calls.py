"""The API's calls as data (method, URL, arguments, how to parse the answer), and the mapping
of error answers to genqueue exceptions: what ``Client`` and ``AsyncClient`` share, so both
send exactly the same requests and differ only in how they send them."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Generic, TypedDict, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from genqueue.api.schemas import BatchPublic, BrokerPublic, QueuePublic, TaskPage, TaskPublic
from genqueue.errors import (
    BackendUnavailableError,
    ConfigError,
    FieldProblem,
    GenqueueError,
    IdempotencyConflictError,
    InvalidInputError,
    QuotaExceededError,
    ResultExpiredError,
    TaskNotFoundError,
    WaitTimeoutError,
)
from genqueue.models import FINISHED, LimitStatus, TaskStatus, WorkerInfo
from genqueue.secret_files import read_secret_file
from genqueue.sse import RECONNECT
from genqueue.webhooks.records import WebhookDelivery

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

DEFAULT_URL = "http://127.0.0.1:8000"
API_KEY_ENV = "GENQUEUE_API_KEY"
API_KEY_FILE_ENV = "GENQUEUE_API_KEY_FILE"
RUN_TIMEOUT_S = 600.0  # what ``run`` and ``map`` wait by default before WaitTimeoutError
WAIT_SLICE_S = 60.0  # one long poll of ``/wait`` (the API allows 300): a dead one shows soon
PAGE = 500  # the most ``GET /v1/tasks`` gives at once


class BatchOptions(TypedDict, total=False):
    """What ``map`` passes on for every task of its batch (as :meth:`Client.submit_batch`)."""

    user: str | None
    priority: int
    queue: str | None
    delay_s: float | None
    run_at: datetime | None
    start_by: datetime | None
    cancel_after_s: float | None


class SubmitOptions(BatchOptions, total=False):
    """The options of :meth:`Client.submit`, for ``run`` to pass on."""

    idempotency_key: str | None
    cache: bool


def auth_headers(api_key: str | None) -> dict[str, str]:
    """``Authorization: Bearer <key>`` for the key given, else ``GENQUEUE_API_KEY`` if set,
    else the content of the file ``GENQUEUE_API_KEY_FILE`` names (``""`` sends none even
    then; both variables set is a configuration error, as for the settings). A key read from
    a file may end in a newline: stripped."""
    key = (_key_from_environment() if api_key is None else api_key).strip()
    if not key:
        return {}
    if not key.isascii() or any(c.isspace() or not c.isprintable() for c in key):
        raise ConfigError(f"an API key is one printable ASCII word (from {API_KEY_ENV} or api_key)")
    return {"Authorization": f"Bearer {key}"}


def _key_from_environment() -> str:
    from_file = os.environ.get(API_KEY_FILE_ENV)
    if from_file is None:
        return os.environ.get(API_KEY_ENV) or ""
    if os.environ.get(API_KEY_ENV) is not None:
        raise ConfigError(f"set {API_KEY_ENV} or {API_KEY_FILE_ENV}, not both")
    return read_secret_file(API_KEY_FILE_ENV, from_file)


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
        case 410:
            raise ResultExpiredError(message)
        case 409:
            raise IdempotencyConflictError(message)
        case 422 | 400 | 413:
            fields = body.get("fields") or [{"field": "body", "message": message}]
            raise InvalidInputError([FieldProblem(f["field"], f["message"]) for f in fields])
        case 429:
            raise quota_exceeded(response, body, message)
        case 503:
            raise BackendUnavailableError(message)
        case code:
            raise GenqueueError(f"HTTP {code}: {message}")


def quota_exceeded(response: httpx.Response, body: Any, message: str) -> QuotaExceededError:
    """The 429 of a quota or queue bound (genqueue/api/quotas.py), ``retry_after_s`` from its
    ``Retry-After`` (1 s if absent or not a number: it answered 429, so wait a little)."""
    header = response.headers.get("retry-after", "")
    retry_after_s = int(header) if header.isdigit() else 1
    limit = body.get("limit")
    if limit not in ("tasks_per_minute", "in_flight", "queue"):
        limit = "queue"
    return QuotaExceededError(
        message,
        limit,
        retry_after_s,
        allowed=body.get("allowed"),
        current=body.get("current"),
        requested=body.get("requested"),
        queue=body.get("queue"),
    )


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


# A submit's webhook: a URL (the default events), or {"url": ..., "events": [...]}.
Webhook = str | dict[str, Any]


def with_webhook(call: Call[T], webhook: Webhook | None) -> Call[T]:
    """``call`` (a task or batch submit) with a ``webhook`` in its body."""
    if webhook is None:
        return call
    spec = {"url": webhook} if isinstance(webhook, str) else dict(webhook)
    return replace(call, kwargs={**call.kwargs, "json": {**call.kwargs["json"], "webhook": spec}})


def webhook_deliveries(task_id: str | None, batch_id: str | None) -> Call[list[WebhookDelivery]]:
    if (task_id is None) == (batch_id is None):
        raise ValueError("give a task_id or a batch_id")
    where = f"tasks/{task_id}" if task_id is not None else f"batches/{batch_id}"
    return Call("GET", f"/v1/{where}/webhooks", list_of(WebhookDelivery))


def submit(
    kind: str,
    payload: dict[str, Any] | None,
    user: str | None,
    priority: int,
    queue: str | None,
    idempotency_key: str | None,
    schedule: Schedule,
    cache: bool = True,
) -> Call[TaskPublic]:
    """``cache=False`` sends ``Cache-Control: no-cache``: run anew even if the result cache
    holds the result (genqueue/result_cache.py)."""
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    if not cache:
        headers["Cache-Control"] = "no-cache"
    body = task_body(kind, payload, user, priority, queue, schedule)
    return Call("POST", "/v1/tasks", TaskPublic.model_validate, {"json": body, "headers": headers})


def map_tasks(
    kind: str, payloads: Iterable[dict[str, Any] | None], options: BatchOptions
) -> Call[BatchPublic]:
    """``map``'s batch: one task of ``kind`` per payload, in order."""
    priority, queue = options.get("priority", 0), options.get("queue")
    tasks = [task_body(kind, p, None, priority, queue, Schedule()) for p in payloads]
    schedule = Schedule(
        options.get("delay_s"),
        options.get("run_at"),
        options.get("start_by"),
        options.get("cancel_after_s"),
    )
    return submit_batch(tasks, options.get("user"), schedule)


def finished_page(batch_id: str, status: TaskStatus, cursor: str | None) -> Call[TaskPage]:
    """One page of a batch's tasks in a finished status (no queue positions to compute)."""
    assert status in FINISHED
    return list_tasks(
        {"batch_id": batch_id, "status": status.value, "limit": PAGE, "cursor": cursor}
    )


def still_running(task: TaskPublic, timeout_s: float) -> WaitTimeoutError:
    return WaitTimeoutError(
        f"task {task.id} ({task.kind}) still {task.status.value} after {timeout_s:g} s",
        task=task,
    )


class Deadline:
    """The time a ``run`` may take: how long the next long poll may last, and the pause
    after an outage (the API restarting, a backend down) before asking again."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._at = time.monotonic() + timeout_s
        self._failures = 0

    def left_s(self) -> float:
        return max(0.0, self._at - time.monotonic())

    def poll_s(self) -> float:
        return min(self.left_s(), WAIT_SLICE_S)

    def pause_s(self) -> float:
        self._failures += 1
        return min(RECONNECT.delay_s(self._failures), self.left_s())


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
