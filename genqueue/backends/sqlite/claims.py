"""Claims on SQLite: plain functions over a connection, run inside the store's transactions.

A claim moves a queued task to running under a new lease in one transaction; on the way it
may find the task past its ``start_by`` (it expires), or needing a permit of its resource
(taken with the lease, or the task parked: ``Waiting``). ``claim_next`` takes the head of the
queue's fair order (fair.py) instead of a named task.
"""

from __future__ import annotations

import sqlite3

from genqueue import limiter
from genqueue.backends.sqlite import fair, limits, outbox
from genqueue.backends.sqlite.rows import TASK_COLUMNS, insert_event, task_from_row
from genqueue.contracts import Claim, Lease, Waiting
from genqueue.models import EventType, TaskStatus, from_epoch

Conn = sqlite3.Connection
Row = sqlite3.Row
_RETURN = f"RETURNING {TASK_COLUMNS}"
# A claim: running under a new lease (worker id, token, lease expiry, now), one more attempt.
_CLAIM_SET = (
    "UPDATE tasks SET status = 'running', attempts = attempts + 1, worker_id = ?,"
    " lease_token = ?, lease_expires_at = ?, started_at = ?, progress = 0,"
    " progress_message = '', error = NULL, waiting_for = NULL"
)
# (worker id, token, lease expiry, now)
LeaseTerms = tuple[str, str, float, float]


def claim(conn: Conn, task_id: str, terms: LeaseTerms) -> Claim | Waiting | None:
    now = terms[3]
    # The common case in one statement: no permit to take, no deadline passed.
    row = conn.execute(
        f"{_CLAIM_SET} WHERE id = ? AND status = 'queued' AND not_before <= ?"
        f" AND resource IS NULL AND (start_by IS NULL OR start_by >= ?) {_RETURN}",
        (*terms, task_id, now, now),
    ).fetchone()
    if row is not None:
        return _started(conn, row, terms[1], now, None)
    return _claim_limited(conn, task_id, terms, now)


def claim_next(conn: Conn, queue: str, terms: LeaseTerms) -> Claim | Waiting | None:
    """The head of the queue's line, as :func:`claim` would claim it; tasks past their
    ``start_by`` met on the way expire."""
    now = terms[3]
    fair.join_when_due(conn, queue, now)
    free = [
        resource
        for resource in fair.parked_resources(conn, queue)
        if (state := limits.load(conn, resource)) is None
        or limiter.free_permits(state, limits.in_flight(conn, resource, now), now) > 0
    ]
    tried: set[str] = set()
    while (first := fair.head(conn, queue, free)) is not None:
        if first["id"] in tried:  # a head that would not move: never spin under the lock
            return None
        tried.add(first["id"])
        outcome = claim(conn, first["id"], terms)
        if isinstance(outcome, Claim) and first["waiting_for"] is not None:
            # A parked task spent its own message when it was parked: this one was another
            # task's, so the next in line is owed one (at worst one too many, which finds
            # nothing to claim).
            after = fair.head(conn, queue, [])
            if after is not None:
                outbox.owe_unless_owed(conn, [after["id"]], now)
        if outcome is not None:
            return outcome
    return None


def _started(conn: Conn, row: Row, token: str, now: float, epoch: int | None) -> Claim:
    """The claim that moved ``row`` to running: its event and lease."""
    worker_id = row["worker_id"]
    insert_event(
        conn,
        now,
        EventType.STARTED,
        row,
        TaskStatus.RUNNING,
        {"worker_id": worker_id, "attempt": row["attempts"]},
    )
    lease = Lease(
        task_id=row["id"],
        worker_id=worker_id,
        token=token,
        attempt=row["attempts"],
        expires_at=from_epoch(row["lease_expires_at"]),
        cancel_requested=bool(row["cancel_requested"]),
        epoch=epoch,
    )
    return Claim(lease, task_from_row(row))


def _claim_limited(
    conn: Conn, task_id: str, lease: tuple[str, str, float, float], now: float
) -> Claim | Waiting | None:
    """A claim the one statement did not make: not claimable, past its ``start_by``
    (expired now), or needing a permit of its resource (taken, or the task parked)."""
    me = conn.execute(
        "SELECT status, not_before, start_by, resource FROM tasks WHERE id = ?", (task_id,)
    ).fetchone()
    if me is None or me["status"] != TaskStatus.QUEUED:
        return None
    if me["not_before"] > now:
        # In line but not due by this clock (it stepped back): out of line until it is due,
        # when fair.join_when_due brings it back with its tag.
        conn.execute("UPDATE tasks SET ready = 0 WHERE id = ?", (task_id,))
        return None
    if me["start_by"] is not None and me["start_by"] < now:
        expire(conn, task_id, now)
        return None
    resource = me["resource"]
    state = limits.load(conn, resource)
    epoch = None
    if state is not None:
        admission = limiter.admits(state, limits.in_flight(conn, resource, now), now)
        if not admission.admitted:
            row = conn.execute(
                f"UPDATE tasks SET waiting_for = ? WHERE id = ? {_RETURN}", (resource, task_id)
            ).fetchone()
            until = from_epoch(now + admission.wait_s) if admission.wait_s > 0 else None
            return Waiting(task_from_row(row), until)
        epoch = state.epoch
    row = conn.execute(f"{_CLAIM_SET} WHERE id = ? {_RETURN}", (*lease, task_id)).fetchone()
    return _started(conn, row, lease[1], now, epoch)


def expire(conn: Conn, task_id: str, now: float) -> None:
    """A queued task not started by its ``start_by`` ends expired, never to run late."""
    row = conn.execute(
        "UPDATE tasks SET status = 'expired', finished_at = ?, waiting_for = NULL,"
        " error = 'not started by its start_by (' ||"
        " strftime('%Y-%m-%dT%H:%M:%fZ', start_by, 'unixepoch') || ')'"
        f" WHERE id = ? AND status = 'queued' {_RETURN}",
        (now, task_id),
    ).fetchone()
    if row is not None:
        insert_event(conn, now, EventType.EXPIRED, row, TaskStatus.EXPIRED, {"error": row["error"]})
