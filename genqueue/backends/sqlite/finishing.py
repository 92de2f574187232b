"""Recording a run's outcome on SQLite: plain functions over a connection, run inside the
store's transactions, so the outcome, its event, the permit it frees (and the parked task it
wakes), a limit error's cut and the service time it moves commit together."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from genqueue import limiter
from genqueue.backends.sqlite import limits
from genqueue.backends.sqlite.rows import TASK_COLUMNS, insert_event, task_from_row
from genqueue.contracts import (
    Cancelled,
    Failed,
    Lease,
    Outcome,
    Requeue,
    Succeeded,
    Throttled,
)
from genqueue.errors import LeaseLostError
from genqueue.models import EventType, Task, TaskStatus

Conn = sqlite3.Connection
_RETURN = f"RETURNING {TASK_COLUMNS}"
EWMA_WEIGHT = 0.2  # how far one run moves a service time (Store.finish)


def finish(conn: Conn, lease: Lease, outcome: Outcome, now: float) -> Task:
    fence = (lease.task_id, lease.token)
    where = "WHERE id = ? AND lease_token = ? AND status = 'running'"
    release = "lease_token = NULL, lease_expires_at = NULL"
    released: tuple[Any, ...] = ()
    if isinstance(outcome, Succeeded | Failed | Requeue):
        # The run's batch size, None when it was not batched (Task.batch_size); Cancelled and
        # Throttled do not tell it, so they leave the one recorded before.
        release += ", batch_size = ?"
        released = (outcome.batch_size,)
    data: dict[str, Any] = {"attempt": lease.attempt}
    match outcome:
        case Succeeded(result=result):
            status, event = TaskStatus.SUCCEEDED, EventType.SUCCEEDED
            sql = (
                f"UPDATE tasks SET status = ?, result = ?, progress = 1,"
                f" finished_at = ?, {release} {where} {_RETURN}"
            )
            params: tuple[Any, ...] = (status.value, json.dumps(result), now, *released, *fence)
        case Failed(error=error) | Cancelled(reason=error):
            status = TaskStatus.FAILED if isinstance(outcome, Failed) else TaskStatus.CANCELLED
            event = EventType(f"task.{status.value}")
            data["error"] = error
            sql = (
                f"UPDATE tasks SET status = ?, error = ?, finished_at = ?, {release}"
                f" {where} {_RETURN}"
            )
            params = (status.value, error, now, *released, *fence)
        case Requeue() | Throttled():
            status, event = TaskStatus.QUEUED, EventType.RETRYING
            refund = int(isinstance(outcome, Throttled) or outcome.refund)
            not_before = now + outcome.delay_s
            if isinstance(outcome, Throttled):
                not_before = _throttle(conn, lease, outcome, now)
                data["throttled"] = True
            data.update(error=outcome.error, delay_s=not_before - now)
            sql = (
                f"UPDATE tasks SET status = 'queued', error = ?, not_before = ?,"
                f" attempts = attempts - ?, progress = 0, progress_message = '',"
                f" ready = fair_tag IS NOT NULL AND ? <= ?, {release} {where} {_RETURN}"
            )
            # Back in line with its tag at once when due now, else when due (fair.py).
            params = (outcome.error, not_before, refund, not_before, now, *released, *fence)
    row = conn.execute(sql, params).fetchone()
    if row is None:
        raise LeaseLostError(f"lease on {lease.task_id} lost; outcome not recorded")
    insert_event(conn, now, event, row, status, data)
    if isinstance(outcome, Succeeded | Failed) and row["started_at"] is not None:
        _observe(conn, row["queue"], row["kind"], now - row["started_at"])
    if row["resource"] is not None:  # its permit is free: for the first parked task
        state = limits.load(conn, row["resource"])
        if state is not None:
            limits.wake(conn, row["resource"], state, now)
    return task_from_row(row)


def _throttle(conn: Conn, lease: Lease, outcome: Throttled, now: float) -> float:
    """Apply a limit error to the limiter of the leased task's resource; returns when the
    task may run again (its delay, or the resource's Retry-After if later)."""
    not_before = now + outcome.delay_s
    row = conn.execute(
        "SELECT resource FROM tasks WHERE id = ? AND lease_token = ? AND status = 'running'",
        (lease.task_id, lease.token),
    ).fetchone()
    resource = None if row is None else row[0]
    state = None if resource is None else limits.load(conn, resource)
    if resource is None or state is None:
        return not_before
    state = limiter.throttle(state, lease.epoch, now, outcome.retry_after_s)
    limits.save(conn, resource, state)
    return max(not_before, state.blocked_until)


def _observe(conn: Conn, queue: str, kind: str, seconds: float) -> None:
    """Move the service time of (queue, kind) by one run of ``seconds``."""
    row = conn.execute(
        "SELECT mean_s, deviation_s, samples FROM service_times WHERE queue = ? AND kind = ?",
        (queue, kind),
    ).fetchone()
    mean, deviation, samples = (seconds, 0.0, 0) if row is None else tuple(row)
    if row is not None:
        deviation += EWMA_WEIGHT * (abs(seconds - mean) - deviation)
        mean += EWMA_WEIGHT * (seconds - mean)
    conn.execute(
        "INSERT OR REPLACE INTO service_times (queue, kind, mean_s, deviation_s, samples)"
        " VALUES (?, ?, ?, ?, ?)",
        (queue, kind, mean, deviation, samples + 1),
    )
