"""The SQLite store's worker registry: plain functions over a connection, run by the store
inside its transactions (``register_worker`` ... ``mark_offline`` in ``contracts.Store``)."""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass

from genqueue.backends.sqlite.rows import worker_from_row
from genqueue.models import WorkerInfo, WorkerStatus

Conn = sqlite3.Connection


@dataclass(frozen=True)
class Figures:
    """What a heartbeat reports: the tasks running, the counts, why it is degraded, and the
    models it holds warm."""

    running: list[str]
    succeeded: int
    failed: int
    degraded: str | None
    models: list[str]


def register(conn: Conn, info: WorkerInfo, now: float) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO workers (id, name, host, pid, queues, concurrency,"
        " status, started_at, last_seen, running, succeeded, failed, models)"
        " VALUES (?, ?, ?, ?, ?, ?, 'online', ?, ?, '[]', 0, 0, ?)",
        (
            info.id,
            info.name,
            info.host,
            info.pid,
            json.dumps(info.queues),
            info.concurrency,
            info.started_at.timestamp(),
            now,
            json.dumps(info.models),
        ),
    )


def heartbeat(conn: Conn, worker_id: str, figures: Figures) -> None:
    status = WorkerStatus.ONLINE if figures.degraded is None else WorkerStatus.DEGRADED
    conn.execute(
        "UPDATE workers SET last_seen = ?, running = ?, succeeded = ?, failed = ?,"
        " status = ?, reason = ?, models = ? WHERE id = ?",
        (
            time.time(),
            json.dumps(figures.running),
            figures.succeeded,
            figures.failed,
            status.value,
            figures.degraded,
            json.dumps(figures.models),
            worker_id,
        ),
    )


def stop(conn: Conn, worker_id: str, now: float) -> None:
    conn.execute(
        "UPDATE workers SET status = 'stopped', running = '[]', reason = NULL, models = '[]',"
        " last_seen = ? WHERE id = ?",
        (now, worker_id),
    )


def list_all(conn: Conn) -> list[WorkerInfo]:
    rows = conn.execute("SELECT * FROM workers ORDER BY started_at DESC").fetchall()
    return [worker_from_row(r) for r in rows]


def mark_offline(conn: Conn, silent_s: float) -> list[str]:
    """Live workers silent for ``silent_s`` go offline; their leases expire now."""
    now = time.time()
    ids = [
        r[0]
        for r in conn.execute(
            "UPDATE workers SET status = 'offline', running = '[]', reason = NULL, models = '[]'"
            " WHERE status IN ('online', 'degraded') AND last_seen < ? RETURNING id",
            (now - silent_s,),
        ).fetchall()
    ]
    for worker_id in ids:
        conn.execute(
            "UPDATE tasks SET lease_expires_at = ? WHERE status = 'running' AND worker_id = ?",
            (now - 0.001, worker_id),
        )
    return ids
