"""The SQLite store's result expiry and result cache: plain functions over a connection, run by
the store (``purge``, ``tombstone``, ``cached`` in ``contracts.Store``).

Tombstones live in table ``tombstones`` (schema.sql); the cache reads ``tasks.cache_key``
by the partial index ``tasks_cache`` (db.py ADDED_INDEXES).
"""

from __future__ import annotations

import sqlite3

from genqueue.backends.sqlite.rows import TASK_COLUMNS, task_from_row
from genqueue.models import FINISHED, Task, TaskStatus, Tombstone, from_epoch

Conn = sqlite3.Connection
_FINISHED = ", ".join(f"'{s.value}'" for s in FINISHED)
SUCCEEDED = TaskStatus.SUCCEEDED.value


def purge_tasks(conn: Conn, now: float, older_than_s: float, kept_s: float) -> list[str]:
    """Delete the finished tasks older than the cutoff, leave a tombstone of each (kept
    ``kept_s``), forget tombstones past theirs; in the caller's transaction."""
    gone = conn.execute(
        f"DELETE FROM tasks WHERE status IN ({_FINISHED}) AND finished_at < ?"
        " RETURNING id, user, finished_at",
        (now - older_than_s,),
    ).fetchall()
    if kept_s > 0:
        conn.executemany(
            "INSERT OR REPLACE INTO tombstones (task_id, user, expired_at, forget_at)"
            " VALUES (?, ?, ?, ?)",
            [(r["id"], r["user"], r["finished_at"] + older_than_s, now + kept_s) for r in gone],
        )
    conn.execute("DELETE FROM tombstones WHERE forget_at <= ?", (now,))
    return [r["id"] for r in gone]


def tombstone(conn: Conn, task_id: str, now: float) -> Tombstone | None:
    row = conn.execute(
        "SELECT task_id, user, expired_at FROM tombstones WHERE task_id = ? AND forget_at > ?",
        (task_id, now),
    ).fetchone()
    if row is None:
        return None
    return Tombstone(task_id=row["task_id"], user=row["user"], expired_at=from_epoch(row[2]))


def cached(conn: Conn, user: str | None, kind: str, cache_key: str, since: float) -> Task | None:
    """The newest succeeded task of ``user`` and ``kind`` with ``cache_key`` finished after
    ``since``."""
    # The status spelled out, not bound: SQLite uses a partial index only for a literal.
    row = conn.execute(
        f"SELECT {TASK_COLUMNS} FROM tasks WHERE cache_key = ? AND status = '{SUCCEEDED}'"
        " AND kind = ? AND user IS ? AND finished_at > ? ORDER BY finished_at DESC LIMIT 1",
        (cache_key, kind, user, since),
    ).fetchone()
    return None if row is None else task_from_row(row)
