"""Rows of the SQLite schema turned into genqueue's models, and the event insert."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from genqueue.backends.sqlite.webhooks import target_of
from genqueue.models import (
    Event,
    Progress,
    Task,
    TaskStatus,
    WorkerInfo,
    WorkerStatus,
    from_epoch,
    maybe_from_epoch,
)

TASK_COLUMNS = (
    "id, kind, queue, payload, user, priority, batch_id, idempotency_key, status, progress, "
    "progress_message, attempts, max_attempts, result, error, created_at, started_at, "
    "finished_at, not_before, worker_id, lease_expires_at, cancel_requested, resource, "
    "waiting_for, start_by, cancel_after_s, weight, batch_size, model, webhook, cache_key"
)


def task_from_row(row: sqlite3.Row) -> Task:
    return Task(
        id=row["id"],
        kind=row["kind"],
        queue=row["queue"],
        payload=json.loads(row["payload"]),
        user=row["user"],
        priority=row["priority"],
        batch_id=row["batch_id"],
        idempotency_key=row["idempotency_key"],
        status=TaskStatus(row["status"]),
        progress=Progress(fraction=row["progress"], message=row["progress_message"]),
        attempts=row["attempts"],
        max_attempts=row["max_attempts"],
        result=None if row["result"] is None else json.loads(row["result"]),
        error=row["error"],
        created_at=from_epoch(row["created_at"]),
        started_at=maybe_from_epoch(row["started_at"]),
        finished_at=maybe_from_epoch(row["finished_at"]),
        not_before=maybe_from_epoch(row["not_before"]),
        worker_id=row["worker_id"],
        lease_expires_at=maybe_from_epoch(row["lease_expires_at"]),
        cancel_requested=bool(row["cancel_requested"]),
        resource=row["resource"],
        waiting_for=row["waiting_for"],
        start_by=maybe_from_epoch(row["start_by"]),
        cancel_after_s=row["cancel_after_s"],
        weight=row["weight"],
        batch_size=row["batch_size"],
        model=row["model"],
        webhook=target_of(row["webhook"]),
        cache_key=row["cache_key"],
    )


def worker_from_row(row: sqlite3.Row) -> WorkerInfo:
    return WorkerInfo(
        id=row["id"],
        name=row["name"],
        host=row["host"],
        pid=row["pid"],
        queues=json.loads(row["queues"]),
        concurrency=row["concurrency"],
        status=WorkerStatus(row["status"]),
        started_at=maybe_from_epoch(row["started_at"]),
        last_seen=from_epoch(row["last_seen"]),
        running=json.loads(row["running"]),
        succeeded=row["succeeded"],
        failed=row["failed"],
        reason=row["reason"],
        models=json.loads(row["models"]),
    )


def event_from_row(row: sqlite3.Row) -> Event:
    return Event(
        id=str(row["id"]),
        type=row["type"],
        task_id=row["task_id"],
        status=TaskStatus(row["status"]),
        at=from_epoch(row["at"]),
        user=row["user"],
        batch_id=row["batch_id"],
        kind=row["kind"],
        data=json.loads(row["data"]),
    )


def insert_event(
    conn: sqlite3.Connection,
    now: float,
    type_: str,
    row: sqlite3.Row | dict[str, Any],
    status: TaskStatus,
    data: dict[str, Any] | None = None,
) -> None:
    """Record an event about the task in ``row`` in the caller's transaction."""
    conn.execute(
        "INSERT INTO events (at, type, task_id, status, user, batch_id, kind, data)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            now,
            str(type_),
            row["id"],
            status.value,
            row["user"],
            row["batch_id"],
            row["kind"],
            json.dumps(data or {}),
        ),
    )
