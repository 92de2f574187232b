"""Rows of the PostgreSQL schema turned into genqueue's models."""

from __future__ import annotations

from typing import Any

from genqueue.models import (
    Batch,
    Event,
    Progress,
    Task,
    TaskStatus,
    WorkerInfo,
    WorkerStatus,
)

Row = Any  # asyncpg.Record

TASK_COLUMNS = (
    "id, kind, queue, payload, user_name, priority, batch_id, idempotency_key, status, progress,"
    " progress_message, attempts, max_attempts, result, error, created_at, started_at,"
    " finished_at, not_before, worker_id, lease_expires_at, cancel_requested"
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
    )


def batch_from_row(row: Row) -> Batch:
    """A ``batches`` row with a ``counts`` column (jsonb: status -> count)."""
    return Batch(
        id=row["id"],
        user=row["user_name"],
        created_at=row["created_at"],
        size=row["size"],
        counts={TaskStatus(s): n for s, n in (row["counts"] or {}).items()},
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
