"""The SQLite store's submit quotas (``Store.quotas``; policy in ``genqueue/api/quotas.py``):
plain functions over a connection, run by :class:`SqliteQuotas`.

``quota_windows`` holds one row per key: its current window and the count in it (schema.sql).
``spend`` runs inside the store's ``BEGIN IMMEDIATE`` transaction, which holds the
file's write lock, so check and count are one step for every process sharing the file.
Counts read an index at most ``upto`` entries deep: ``tasks_unfinished`` (partial, queued and
running tasks by user) and ``tasks_order`` (queue, status, ...).
"""

from __future__ import annotations

import math
import sqlite3
import time

from genqueue.backends.sqlite.db import Database
from genqueue.contracts import QuotaWindow

Conn = sqlite3.Connection


def spend(
    conn: Conn, key_id: str, tasks: int, per_window: int, window_s: float, now: float
) -> QuotaWindow:
    window = math.floor(now / window_s)
    resets_in_s = (window + 1) * window_s - now
    row = conn.execute(
        "SELECT window, used FROM quota_windows WHERE key_id = ?", (key_id,)
    ).fetchone()
    used = row["used"] if row is not None and row["window"] == window else 0
    if used + tasks > per_window:
        return QuotaWindow(admitted=False, used=used, resets_in_s=resets_in_s)
    conn.execute(
        "INSERT INTO quota_windows (key_id, window, used) VALUES (?, ?, ?)"
        " ON CONFLICT (key_id) DO UPDATE SET window = excluded.window, used = excluded.used",
        (key_id, window, used + tasks),
    )
    return QuotaWindow(admitted=True, used=used + tasks, resets_in_s=resets_in_s)


def count_unfinished(conn: Conn, user: str, upto: int) -> int:
    row = conn.execute(
        "SELECT count(*) FROM (SELECT 1 FROM tasks INDEXED BY tasks_unfinished"
        " WHERE user = ? AND status IN ('queued', 'running') LIMIT ?)",
        (user, max(0, upto)),
    ).fetchone()
    return int(row[0])


def count_queued(conn: Conn, queue: str, upto: int) -> int:
    row = conn.execute(
        "SELECT count(*) FROM (SELECT 1 FROM tasks INDEXED BY tasks_order"
        " WHERE queue = ? AND status = 'queued' LIMIT ?)",
        (queue, max(0, upto)),
    ).fetchone()
    return int(row[0])


class SqliteQuotas:
    """``Store.quotas`` of the SQLite store."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def spend(self, key_id: str, tasks: int, per_window: int, window_s: float) -> QuotaWindow:
        return await self._db.write(
            lambda conn: spend(conn, key_id, tasks, per_window, window_s, time.time())
        )

    async def count_unfinished(self, user: str, upto: int) -> int:
        return await self._db.run(lambda conn: count_unfinished(conn, user, upto))

    async def count_queued(self, queue: str, upto: int) -> int:
        return await self._db.run(lambda conn: count_queued(conn, queue, upto))
