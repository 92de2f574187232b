"""The fair order of a queue on SQLite (``Store.claim_next``): plain functions over a connection,
run inside the store's transactions.

Start-time fair queuing with the tag written once, when a task joins the line: per (queue,
priority) every user has a last finish ``F`` (table ``fair_users``); a task joining gets
``S = max(V, F)`` and moves ``F`` to ``S + 1000 / weight``; the floor ``V`` is the smallest tag
in line, or the largest ``F`` when the line is empty. The line is read in (priority desc, tag,
seq) order from a partial index, so the next task and a position are index walks, and no row
is written by every claim.

``ready`` says a queued task is in line: new tasks join when due (a delayed one at the first
claim of its queue after its time), requeued ones keep their tag and rejoin when due.
"""

from __future__ import annotations

import sqlite3

from genqueue.errors import TaskNotFoundError
from genqueue.models import TaskStatus

Conn = sqlite3.Connection
Row = sqlite3.Row
STRIDE = 1000  # tag units per task of weight 1 (research/scheduling.md 0.1)
PROMOTE_BATCH = 500  # due tasks brought into line per claim, at most


def user_key(user: str | None) -> str:
    return user or ""


def increment(weight: float) -> int:
    return max(1, round(STRIDE / weight))


def _floor(conn: Conn, queue: str, priority: int) -> int:
    row = conn.execute(
        "SELECT min(fair_tag) FROM tasks WHERE queue = ? AND priority = ? AND status = 'queued'"
        " AND ready = 1",
        (queue, priority),
    ).fetchone()
    if row[0] is not None:
        return int(row[0])
    row = conn.execute(
        "SELECT max(finish) FROM fair_users WHERE queue = ? AND priority = ?", (queue, priority)
    ).fetchone()
    return int(row[0] or 0)


def tag(conn: Conn, queue: str, priority: int, user: str | None, weight: float) -> int:
    """The start tag of a task of ``user`` joining the line now, its user's ``F`` moved on."""
    key = user_key(user)
    row = conn.execute(
        "SELECT finish FROM fair_users WHERE queue = ? AND priority = ? AND user_key = ?",
        (queue, priority, key),
    ).fetchone()
    start = max(_floor(conn, queue, priority), 0 if row is None else int(row[0]))
    conn.execute(
        "INSERT OR REPLACE INTO fair_users (queue, priority, user_key, finish) VALUES (?, ?, ?, ?)",
        (queue, priority, key, start + increment(weight)),
    )
    return start


def give_back(conn: Conn, task_id: str) -> None:
    """A queued task leaving without a run (cancelled) hands its share back to its user:
    ``F = max(V, F - increment)``, so a user who cancels a batch and resubmits does not queue
    behind the rounds the batch would have had (research/scheduling.md 0.1). Call it after
    the task has left the line; a task that never had a tag moved nothing."""
    task = conn.execute(
        "SELECT queue, priority, user, weight, fair_tag FROM tasks WHERE id = ?", (task_id,)
    ).fetchone()
    if task is None or task["fair_tag"] is None:
        return
    queue, priority, key = task["queue"], task["priority"], user_key(task["user"])
    conn.execute(
        "UPDATE fair_users SET finish = max(?, finish - ?)"
        " WHERE queue = ? AND priority = ? AND user_key = ?",
        (_floor(conn, queue, priority), increment(task["weight"]), queue, priority, key),
    )


def join_when_due(conn: Conn, queue: str, now: float) -> None:
    """Bring the queue's due tasks that are not in line into it: new ones get a tag, requeued
    ones keep theirs."""
    due = conn.execute(
        "SELECT id, priority, user, weight, fair_tag FROM tasks WHERE queue = ?"
        " AND status = 'queued' AND ready = 0 AND not_before <= ? ORDER BY not_before LIMIT ?",
        (queue, now, PROMOTE_BATCH),
    ).fetchall()
    for row in due:
        start = row["fair_tag"]
        if start is None:
            start = tag(conn, queue, row["priority"], row["user"], row["weight"])
        conn.execute("UPDATE tasks SET ready = 1, fair_tag = ? WHERE id = ?", (start, row["id"]))


def head(conn: Conn, queue: str, parked_for: list[str]) -> Row | None:
    """The first task in line (id, waiting_for) that is not parked, or parked for one of
    ``parked_for`` (resources with a free permit)."""
    order = "ORDER BY priority DESC, fair_tag, seq LIMIT 1"
    candidates: list[Row] = []
    row = conn.execute(
        "SELECT id, waiting_for, priority, fair_tag, seq FROM tasks WHERE queue = ?"
        f" AND status = 'queued' AND ready = 1 AND waiting_for IS NULL {order}",
        (queue,),
    ).fetchone()
    if row is not None:
        candidates.append(row)
    for resource in parked_for:
        row = conn.execute(
            "SELECT id, waiting_for, priority, fair_tag, seq FROM tasks WHERE waiting_for = ?"
            f" AND queue = ? AND status = 'queued' AND ready = 1 {order}",
            (resource, queue),
        ).fetchone()
        if row is not None:
            candidates.append(row)
    if not candidates:
        return None
    return min(candidates, key=lambda r: (-r["priority"], r["fair_tag"], r["seq"]))


def line(conn: Conn, queue: str, limit: int, now: float) -> list[Row]:
    """The first ``limit`` tasks (id, model) of the part of the line :func:`head` walks first:
    in line, due, not parked."""
    return conn.execute(
        "SELECT id, model FROM tasks WHERE queue = ? AND status = 'queued' AND ready = 1"
        " AND waiting_for IS NULL AND not_before <= ?"
        " ORDER BY priority DESC, fair_tag, seq LIMIT ?",
        (queue, now, limit),
    ).fetchall()


def parked_resources(conn: Conn, queue: str) -> list[str]:
    """The resources some task of ``queue`` is parked for. Read from the parked tasks' own
    index: left to itself the planner walks every queued task of the queue (by queue and
    status), once per claim, which made draining a deep queue quadratic."""
    return [
        row[0]
        for row in conn.execute(
            "SELECT DISTINCT waiting_for FROM tasks INDEXED BY tasks_parked"
            " WHERE status = 'queued' AND waiting_for IS NOT NULL AND queue = ?",
            (queue,),
        )
    ]


def position(conn: Conn, task_id: str) -> int | None:
    """1-based place in line; None when not queued or not in line yet."""
    me = conn.execute(
        "SELECT queue, status, ready, priority, fair_tag, seq FROM tasks WHERE id = ?",
        (task_id,),
    ).fetchone()
    if me is None:
        raise TaskNotFoundError(f"no task {task_id!r}")
    if me["status"] != TaskStatus.QUEUED or not me["ready"]:
        return None
    ahead: int = conn.execute(
        "SELECT count(*) FROM tasks WHERE queue = ? AND status = 'queued' AND ready = 1"
        " AND (priority > ? OR (priority = ? AND (fair_tag < ? OR (fair_tag = ? AND seq < ?))))",
        (
            me["queue"],
            me["priority"],
            me["priority"],
            me["fair_tag"],
            me["fair_tag"],
            me["seq"],
        ),
    ).fetchone()[0]
    return ahead + 1
