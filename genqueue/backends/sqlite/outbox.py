"""The outbox on SQLite (``Store.take_outbox``): plain functions over a connection, run inside
the store's transactions, so an entry is written in the same commit as the task it is for."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence

from genqueue.contracts import Message

Conn = sqlite3.Connection


def owe(conn: Conn, task_ids: Iterable[str], due_at: float) -> None:
    """Record that these tasks' messages may not be published yet."""
    conn.executemany(
        "INSERT OR REPLACE INTO outbox (task_id, due_at) VALUES (?, ?)",
        [(task_id, due_at) for task_id in task_ids],
    )


def owe_unless_owed(conn: Conn, task_ids: Iterable[str], due_at: float) -> None:
    """Like :func:`owe`, leaving an entry a task already has (maybe held by a relay) alone."""
    conn.executemany(
        "INSERT OR IGNORE INTO outbox (task_id, due_at) VALUES (?, ?)",
        [(task_id, due_at) for task_id in task_ids],
    )


def take(conn: Conn, now: float, limit: int, hold_s: float) -> list[Message]:
    """Due entries of queued tasks, held until ``now + hold_s``; the others are dropped."""
    rows = conn.execute(
        "SELECT o.task_id, t.queue, t.priority, t.not_before, t.status FROM outbox o"
        " LEFT JOIN tasks t ON t.id = o.task_id WHERE o.due_at <= ? ORDER BY o.due_at LIMIT ?",
        (now, limit),
    ).fetchall()
    live = [r for r in rows if r["status"] == "queued"]
    clear(conn, [r["task_id"] for r in rows if r["status"] != "queued"])
    conn.executemany(
        "UPDATE outbox SET due_at = ? WHERE task_id = ?",
        [(now + hold_s, r["task_id"]) for r in live],
    )
    return [
        Message(r["queue"], r["task_id"], r["priority"], max(0.0, r["not_before"] - now))
        for r in live
    ]


def clear(conn: Conn, task_ids: Sequence[str]) -> None:
    conn.executemany("DELETE FROM outbox WHERE task_id = ?", [(i,) for i in task_ids])
