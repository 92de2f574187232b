"""Rows of the PostgreSQL schema turned into genqueue's models, and outcomes into the row
changes they make."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from genqueue.contracts import (
    Cancelled,
    Failed,
    Lease,
    Outcome,
    Requeue,
    Succeeded,
    Throttled,
)
from genqueue.models import (
    Batch,
    Event,
    EventType,
    Progress,
    Task,
    TaskStatus,
    WorkerInfo,
    WorkerStatus,
)
from genqueue.webhooks.records import WebhookTarget

Row = Any  # asyncpg.Record

TASK_COLUMNS = (
    "id, kind, queue, payload, user_name, priority, batch_id, idempotency_key, status, progress,"
    " progress_message, attempts, max_attempts, result, error, created_at, started_at,"
    " finished_at, not_before, worker_id, lease_expires_at, cancel_requested, resource,"
    " waiting_for, start_by, cancel_after_s, weight, batch_size, model, webhook, cache_key"
)


def task_from_row(row: Row) -> Task:
    return Task(
        id=row["id"],
        kind=row["kind"],
        queue=row["queue"],
        payload=row["payload"],
        user=row["user_name"],
        priority=row["priority"],
        batch_id=row["batch_id"],
        idempotency_key=row["idempotency_key"],
        status=TaskStatus(row["status"]),
        progress=Progress(fraction=row["progress"], message=row["progress_message"]),
        attempts=row["attempts"],
        max_attempts=row["max_attempts"],
        result=row["result"],
        error=row["error"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        not_before=row["not_before"],
        worker_id=row["worker_id"],
        lease_expires_at=row["lease_expires_at"],
        cancel_requested=row["cancel_requested"],
        resource=row["resource"],
        waiting_for=row["waiting_for"],
        start_by=row["start_by"],
        cancel_after_s=row["cancel_after_s"],
        weight=row["weight"],
        batch_size=row["batch_size"],
        model=row["model"],
        webhook=target_of(row["webhook"]),
        cache_key=row["cache_key"],
    )


def target_of(value: Any) -> WebhookTarget | None:
    """A ``webhook`` column (jsonb, decoded) as a target (migrations/017_webhooks.sql)."""
    return None if value is None else WebhookTarget.model_validate(value)


def lease_from(task: Task, token: str, epoch: int | None = None) -> Lease:
    """The lease a claim that returned ``task`` (now running) holds."""
    assert task.worker_id is not None and task.lease_expires_at is not None
    return Lease(
        task.id,
        task.worker_id,
        token,
        task.attempts,
        task.lease_expires_at,
        task.cancel_requested,
        epoch,
    )


def batch_from_row(row: Row) -> Batch:
    """A ``batches`` row with a ``counts`` column (jsonb: status -> count)."""
    return Batch(
        id=row["id"],
        user=row["user_name"],
        created_at=row["created_at"],
        size=row["size"],
        counts={TaskStatus(s): n for s, n in (row["counts"] or {}).items()},
        webhook=target_of(row["webhook"]),
    )


def worker_from_row(row: Row) -> WorkerInfo:
    return WorkerInfo(
        id=row["id"],
        name=row["name"],
        host=row["host"],
        pid=row["pid"],
        queues=row["queues"],
        concurrency=row["concurrency"],
        status=WorkerStatus(row["status"]),
        started_at=row["started_at"],
        last_seen=row["last_seen"],
        running=row["running"],
        succeeded=row["succeeded"],
        failed=row["failed"],
        reason=row["reason"],
        models=row["models"],
    )


def event_from_row(row: Row) -> Event:
    return Event(
        id=str(row["id"]),
        type=row["type"],
        task_id=row["task_id"],
        status=TaskStatus(row["status"]),
        at=row["at"],
        user=row["user_name"],
        batch_id=row["batch_id"],
        kind=row["kind"],
        data=row["data"],
    )


@dataclass(frozen=True)
class Finish:
    """What an outcome writes: the FINISH statements' $3..$11 (see ``queries.finish_update``).
    ``throttled`` is kept for the limiter, which may lengthen ``delay_s``. ``sized``: the
    outcome tells its run's ``batch_size`` (Succeeded, Failed, Requeue; None: not batched)."""

    status: TaskStatus
    result: dict[str, Any] | None
    error: str | None
    delay_s: float
    refund: int
    event: EventType
    data: dict[str, Any]
    throttled: Throttled | None = None
    sized: bool = False
    batch_size: int | None = None

    def params(self, delay_s: float | None = None) -> tuple[Any, ...]:
        """$3..$11, with the delay given (a Retry-After's) in place of the outcome's."""
        delay = self.delay_s if delay_s is None else delay_s
        data = {**self.data, "delay_s": delay} if "delay_s" in self.data else self.data
        event, sized = self.event.value, (self.sized, self.batch_size)
        return self.status.value, self.result, self.error, delay, self.refund, event, data, *sized


def finish_of(lease: Lease, outcome: Outcome) -> Finish:
    change = _change_of(lease, outcome)
    if isinstance(outcome, Succeeded | Failed | Requeue):  # Cancelled and Throttled do not tell
        return replace(change, sized=True, batch_size=outcome.batch_size)
    return change


def _change_of(lease: Lease, outcome: Outcome) -> Finish:
    data: dict[str, Any] = {"attempt": lease.attempt}
    match outcome:
        case Succeeded(result=result):
            return Finish(TaskStatus.SUCCEEDED, result, None, 0.0, 0, EventType.SUCCEEDED, data)
        case Failed(error=error):
            data["error"] = error
            return Finish(TaskStatus.FAILED, None, error, 0.0, 0, EventType.FAILED, data)
        case Cancelled(reason=error):
            data["error"] = error
            return Finish(TaskStatus.CANCELLED, None, error, 0.0, 0, EventType.CANCELLED, data)
        case Requeue(delay_s=delay_s, error=error, refund=refund):
            data.update(error=error, delay_s=delay_s)
            status, event = TaskStatus.QUEUED, EventType.RETRYING
            return Finish(status, None, error, float(delay_s), int(refund), event, data)
        case Throttled(delay_s=delay_s, error=error, retry_after_s=retry_after_s):
            data.update(error=error, delay_s=delay_s)
            if retry_after_s is not None:
                data["retry_after_s"] = retry_after_s
            status, event = TaskStatus.QUEUED, EventType.RETRYING
            return Finish(status, None, error, float(delay_s), 1, event, data, outcome)
