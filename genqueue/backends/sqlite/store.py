"""SqliteStore: the Store contract on one SQLite file (schema in schema.sql).

Every method is one function run on the database thread, and every change is one
``BEGIN IMMEDIATE`` transaction that also inserts its events, so the record and its event
commit together. Several processes share the file; the write lock serialises them.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Self, TypeVar

from genqueue.backends.sqlite import (
    claims,
    expiry,
    fair,
    feed,
    finishing,
    keys,
    limits,
    outbox,
    quotas,
    registry,
    webhooks,
)
from genqueue.backends.sqlite.db import Database
from genqueue.backends.sqlite.doorbell import Doorbell
from genqueue.backends.sqlite.rows import (
    TASK_COLUMNS,
    insert_event,
    task_from_row,
)
from genqueue.contracts import (
    OUTBOX_GRACE_S,
    BatchPage,
    Claim,
    Lease,
    LineEntry,
    Message,
    Outcome,
    Page,
    Waiting,
)
from genqueue.errors import LeaseLostError, TaskNotFoundError
from genqueue.models import (
    EXPIRED_KEPT_S,
    ApiKey,
    Batch,
    Event,
    EventType,
    LimitStatus,
    NewTask,
    Progress,
    QueueStats,
    ServiceTime,
    Task,
    TaskFilter,
    TaskStatus,
    Tombstone,
    WorkerInfo,
    from_epoch,
)
from genqueue.settings import LimitSettings

Row = sqlite3.Row
T = TypeVar("T")
Conn = sqlite3.Connection
EVENTS_KEEP_S = 600.0  # events feed live streams only; the task record is the history
_OPEN = f"('{TaskStatus.QUEUED}', '{TaskStatus.RUNNING}')"
_RETURN = f"RETURNING {TASK_COLUMNS}"


def _one_task(conn: Conn, task_id: str) -> Row:
    row: Row | None = conn.execute(
        f"SELECT {TASK_COLUMNS} FROM tasks WHERE id = ?", (task_id,)
    ).fetchone()
    if row is None:
        raise TaskNotFoundError(f"no task {task_id!r}")
    return row


class SqliteStore:
    """The Store contract on SQLite. See ``genqueue.contracts.Store`` for every guarantee."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._bell = Doorbell(db.path, "events")
        self.webhooks = webhooks.SqliteWebhooks(db)
        self.quotas = quotas.SqliteQuotas(db)

    async def _write(self, fn: Callable[[Conn], T]) -> T:
        """A write transaction whose events watchers should hear about at once."""
        result = await self._db.write(fn)
        self._bell.ring()
        return result

    @classmethod
    async def connect(cls, url: str) -> Self:
        return cls(await Database.open(url))

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        self._bell.close()
        await self._db.aclose()

    async def ping(self) -> None:
        await self._db.ping()

    async def submit(
        self, tasks: Sequence[NewTask], *, batch: Batch | None = None
    ) -> list[tuple[Task, bool]]:
        def run(conn: Conn) -> list[tuple[Task, bool]]:
            now = time.time()
            if batch is not None:
                conn.execute(
                    "INSERT INTO batches (id, user, created_at, size) VALUES (?, ?, ?, ?)",
                    (batch.id, batch.user, batch.created_at.timestamp(), batch.size),
                )
            out: list[tuple[Task, bool]] = []
            for t in tasks:
                if t.idempotency_key is not None:
                    old = conn.execute(
                        f"SELECT {TASK_COLUMNS} FROM tasks WHERE idempotency_key = ?",
                        (t.idempotency_key,),
                    ).fetchone()
                    if old is not None:
                        out.append((task_from_row(old), False))
                        continue
                not_before = t.not_before.timestamp() if t.not_before else now
                # Due now: in line at once; else when a claim after its time finds it.
                start = None
                if not_before <= now:
                    start = fair.tag(conn, t.queue, t.priority, t.user, t.weight)
                row = conn.execute(
                    "INSERT INTO tasks (id, kind, queue, payload, user, priority, batch_id,"
                    " idempotency_key, status, max_attempts, created_at, not_before, resource,"
                    " start_by, cancel_after_s, weight, fair_tag, ready, model, cache_key)"
                    f" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    f" {_RETURN}",
                    (
                        t.id,
                        t.kind,
                        t.queue,
                        json.dumps(t.payload),
                        t.user,
                        t.priority,
                        t.batch_id,
                        t.idempotency_key,
                        TaskStatus.QUEUED.value,
                        t.max_attempts,
                        now,
                        not_before,
                        t.resource,
                        t.start_by.timestamp() if t.start_by else None,
                        t.cancel_after_s,
                        t.weight,
                        start,
                        start is not None,
                        t.model,
                        t.cache_key,
                    ),
                ).fetchone()
                insert_event(conn, now, EventType.QUEUED, row, TaskStatus.QUEUED)
                out.append((task_from_row(row), True))
            outbox.owe(conn, [task.id for task, created in out if created], now + OUTBOX_GRACE_S)
            return webhooks.keep_targets(conn, out, tasks, batch)

        return await self._write(run)

    async def get(self, task_id: str) -> Task:
        return task_from_row(await self._db.run(lambda conn: _one_task(conn, task_id)))

    async def list_tasks(self, where: TaskFilter, limit: int, cursor: str | None) -> Page:
        clauses, params = [], []
        for column, value in (
            ("user", where.user),
            ("status", where.status),
            ("kind", where.kind),
            ("batch_id", where.batch_id),
            ("queue", where.queue),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(str(value))
        if cursor is not None:
            clauses.append("seq < ?")
            params.append(cursor)
        sql = f"SELECT seq, {TASK_COLUMNS} FROM tasks"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += f" ORDER BY seq DESC LIMIT {int(limit) + 1}"
        rows = await self._db.run(lambda conn: conn.execute(sql, params).fetchall())
        more = len(rows) > limit
        rows = rows[:limit]
        return Page(
            tasks=[task_from_row(r) for r in rows],
            next_cursor=str(rows[-1]["seq"]) if more else None,
        )

    async def position(self, task_id: str) -> int | None:
        return await self._db.run(lambda conn: fair.position(conn, task_id))

    async def line(self, queue: str, limit: int) -> list[LineEntry]:
        if limit <= 0:  # SQLite reads LIMIT -1 as no limit
            return []
        rows = await self._db.run(lambda conn: fair.line(conn, queue, limit, time.time()))
        return [LineEntry(row["id"], row["model"]) for row in rows]

    async def claim(self, task_id: str, worker_id: str, lease_s: float) -> Claim | Waiting | None:
        # The terms (their clock above all) are taken once the write lock is held, never
        # before: a claim that waited for the lock must not judge what is due by its past.
        return await self._write(
            lambda conn: claims.claim(conn, task_id, _terms(worker_id, lease_s))
        )

    async def claim_next(
        self, queue: str, worker_id: str, lease_s: float
    ) -> Claim | Waiting | None:
        return await self._write(
            lambda conn: claims.claim_next(conn, queue, _terms(worker_id, lease_s))
        )

    async def renew(self, lease: Lease, lease_s: float) -> Lease:
        def run(conn: Conn) -> Lease:
            expires = time.time() + lease_s
            row = conn.execute(
                "UPDATE tasks SET lease_expires_at = ? WHERE id = ? AND lease_token = ?"
                " AND status = 'running' RETURNING cancel_requested",
                (expires, lease.task_id, lease.token),
            ).fetchone()
            if row is None:
                raise LeaseLostError(f"lease on {lease.task_id} lost")
            return replace(lease, expires_at=from_epoch(expires), cancel_requested=bool(row[0]))

        return await self._db.write(run)

    async def set_progress(self, lease: Lease, progress: Progress) -> None:
        def run(conn: Conn) -> None:
            row = conn.execute(
                "UPDATE tasks SET progress = ?, progress_message = ? WHERE id = ?"
                f" AND lease_token = ? AND status = 'running' {_RETURN}",
                (progress.fraction, progress.message, lease.task_id, lease.token),
            ).fetchone()
            if row is None:
                raise LeaseLostError(f"lease on {lease.task_id} lost")
            insert_event(
                conn,
                time.time(),
                EventType.PROGRESS,
                row,
                TaskStatus.RUNNING,
                {"fraction": progress.fraction, "message": progress.message},
            )

        await self._write(run)

    async def add_event(self, lease: Lease, event_type: str, data: dict[str, Any]) -> None:
        def run(conn: Conn) -> None:
            row = conn.execute(
                "SELECT id, user, batch_id, kind FROM tasks"
                " WHERE id = ? AND lease_token = ? AND status = 'running'",
                (lease.task_id, lease.token),
            ).fetchone()
            if row is None:
                raise LeaseLostError(f"lease on {lease.task_id} lost")
            if event_type == EventType.PREVIEW:  # only a task's latest preview is kept
                conn.execute(
                    f"DELETE FROM events WHERE task_id = ? AND type = '{EventType.PREVIEW}'",
                    (lease.task_id,),
                )
            insert_event(conn, time.time(), event_type, row, TaskStatus.RUNNING, data)

        await self._write(run)

    async def finish(self, lease: Lease, outcome: Outcome) -> Task:
        return await self._write(lambda conn: finishing.finish(conn, lease, outcome, time.time()))

    async def cancel(self, task_id: str) -> Task:
        return await self._write(lambda conn: _cancel(conn, task_id, time.time()))

    async def cancel_batch(self, batch_id: str) -> Batch:
        def run(conn: Conn) -> None:
            now = time.time()
            ids = conn.execute(
                f"SELECT id FROM tasks WHERE batch_id = ? AND status IN {_OPEN}", (batch_id,)
            ).fetchall()
            for (task_id,) in ids:
                _cancel(conn, task_id, now)

        await self.get_batch(batch_id)
        await self._write(run)
        return await self.get_batch(batch_id)

    async def requeue_expired(self) -> list[Task]:
        def run(conn: Conn) -> list[Task]:
            now = time.time()
            overdue = conn.execute(
                "SELECT id FROM tasks WHERE status = 'queued' AND start_by < ?", (now,)
            ).fetchall()
            for (task_id,) in overdue:
                claims.expire(conn, task_id, now)
            expired = conn.execute(
                f"SELECT {TASK_COLUMNS} FROM tasks WHERE status = 'running'"
                " AND lease_expires_at < ?",
                (now,),
            ).fetchall()
            requeued = []
            for row in expired:
                release = "worker_id = NULL, lease_token = NULL, lease_expires_at = NULL"
                note = f"lease expired on worker {row['worker_id']} (attempt {row['attempts']})"
                if row["cancel_requested"]:
                    status, sql = (
                        TaskStatus.CANCELLED,
                        (
                            f"UPDATE tasks SET status = 'cancelled', finished_at = ?, error = ?,"
                            f" {release} WHERE id = ? {_RETURN}"
                        ),
                    )
                elif row["attempts"] >= row["max_attempts"]:
                    status, sql = (
                        TaskStatus.FAILED,
                        (
                            f"UPDATE tasks SET status = 'failed', finished_at = ?, error = ?,"
                            f" {release} WHERE id = ? {_RETURN}"
                        ),
                    )
                else:
                    status, sql = (
                        TaskStatus.QUEUED,
                        (
                            f"UPDATE tasks SET status = 'queued', not_before = ?, error = ?,"
                            f" progress = 0, progress_message = '', ready = fair_tag IS NOT NULL,"
                            f" {release} WHERE id = ? {_RETURN}"
                        ),
                    )
                new = conn.execute(sql, (now, note, row["id"])).fetchone()
                event = (
                    EventType.RETRYING
                    if status == TaskStatus.QUEUED
                    else EventType(f"task.{status.value}")
                )
                insert_event(conn, now, event, new, status, {"error": note})
                if status == TaskStatus.QUEUED:
                    requeued.append(task_from_row(new))
            outbox.owe(conn, [task.id for task in requeued], now)
            return requeued

        return await self._write(run)

    async def configure_limits(self, policies: Mapping[str, LimitSettings]) -> None:
        await self._db.write(lambda conn: limits.configure(conn, policies, time.time()))

    async def limits(self) -> list[LimitStatus]:
        return await self._db.run(lambda conn: limits.statuses(conn, time.time()))

    async def wake_waiting(self) -> int:
        return await self._db.write(lambda conn: limits.wake_all(conn, time.time()))

    async def take_outbox(self, limit: int, hold_s: float) -> list[Message]:
        return await self._write(lambda conn: outbox.take(conn, time.time(), limit, hold_s))

    async def clear_outbox(self, task_ids: Sequence[str]) -> None:
        if task_ids:
            await self._write(lambda conn: outbox.clear(conn, task_ids))

    async def get_batch(self, batch_id: str) -> Batch:
        def run(conn: Conn) -> Batch:
            row = conn.execute("SELECT * FROM batches WHERE id = ?", (batch_id,)).fetchone()
            if row is None:
                raise TaskNotFoundError(f"no batch {batch_id!r}")
            counts = conn.execute(
                "SELECT status, count(*) FROM tasks WHERE batch_id = ? GROUP BY status",
                (batch_id,),
            ).fetchall()
            return Batch(
                id=row["id"],
                user=row["user"],
                created_at=from_epoch(row["created_at"]),
                size=row["size"],
                counts={TaskStatus(s): n for s, n in counts},
                webhook=webhooks.target_of(row["webhook"]),
            )

        return await self._db.run(run)

    async def list_batches(self, user: str | None, limit: int, cursor: str | None) -> BatchPage:
        def run(conn: Conn) -> BatchPage:
            clauses: list[str] = []
            params: list[Any] = []
            if user is not None:
                clauses.append("user = ?")
                params.append(user)
            if cursor is not None:
                clauses.append(
                    "(created_at, id) < (SELECT created_at, id FROM batches WHERE id = ?)"
                )
                params.append(cursor)
            where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
            rows = conn.execute(
                f"SELECT * FROM batches {where} ORDER BY created_at DESC, id DESC LIMIT ?",
                (*params, limit + 1),
            ).fetchall()
            more, rows = len(rows) > limit, rows[:limit]
            counts: dict[str, dict[TaskStatus, int]] = {r["id"]: {} for r in rows}
            if rows:
                marks = ", ".join("?" * len(rows))
                for batch_id, status, n in conn.execute(
                    f"SELECT batch_id, status, count(*) FROM tasks WHERE batch_id IN ({marks})"
                    " GROUP BY batch_id, status",
                    list(counts),
                ):
                    counts[batch_id][TaskStatus(status)] = n
            batches = [
                Batch(
                    id=r["id"],
                    user=r["user"],
                    created_at=from_epoch(r["created_at"]),
                    size=r["size"],
                    counts=counts[r["id"]],
                    webhook=webhooks.target_of(r["webhook"]),
                )
                for r in rows
            ]
            return BatchPage(batches, batches[-1].id if more else None)

        return await self._db.run(run)

    async def queue_stats(self) -> list[QueueStats]:
        rows = await self._db.run(
            lambda conn: conn.execute(
                "SELECT queue, status, count(*) FROM tasks GROUP BY queue, status"
            ).fetchall()
        )
        by_queue: dict[str, dict[TaskStatus, int]] = {}
        for queue, status, n in rows:
            by_queue.setdefault(queue, {})[TaskStatus(status)] = n
        return [QueueStats(queue=q, counts=c) for q, c in sorted(by_queue.items())]

    async def service_times(self) -> list[ServiceTime]:
        rows = await self._db.run(
            lambda conn: conn.execute(
                "SELECT queue, kind, mean_s, deviation_s, samples FROM service_times"
                " ORDER BY queue, kind"
            ).fetchall()
        )
        return [ServiceTime(**dict(row)) for row in rows]

    async def register_worker(self, info: WorkerInfo) -> None:
        await self._db.write(lambda conn: registry.register(conn, info, time.time()))

    async def heartbeat_worker(
        self,
        worker_id: str,
        running: list[str],
        succeeded: int,
        failed: int,
        degraded: str | None = None,
        models: Sequence[str] = (),
    ) -> None:
        figures = registry.Figures(running, succeeded, failed, degraded, list(models))
        await self._db.write(lambda conn: registry.heartbeat(conn, worker_id, figures))

    async def stop_worker(self, worker_id: str) -> None:
        await self._db.write(lambda conn: registry.stop(conn, worker_id, time.time()))

    async def list_workers(self) -> list[WorkerInfo]:
        return await self._db.run(registry.list_all)

    async def mark_offline(self, silent_s: float) -> list[str]:
        return await self._db.write(lambda conn: registry.mark_offline(conn, silent_s))

    async def purge(self, older_than_s: float, kept_s: float = EXPIRED_KEPT_S) -> list[str]:
        def run(conn: Conn) -> list[str]:
            now = time.time()
            cutoff = now - older_than_s
            ids = expiry.purge_tasks(conn, now, older_than_s, kept_s)
            conn.execute(
                "DELETE FROM batches WHERE created_at < ? AND NOT EXISTS"
                " (SELECT 1 FROM tasks WHERE batch_id = batches.id)",
                (cutoff,),
            )
            webhooks.purge(conn, cutoff)
            conn.execute(
                "DELETE FROM events WHERE at < ?", (now - min(older_than_s, EVENTS_KEEP_S),)
            )
            conn.execute(
                "DELETE FROM workers WHERE status IN ('offline', 'stopped') AND last_seen < ?",
                (cutoff,),
            )
            return ids

        return await self._db.write(run)

    async def tombstone(self, task_id: str) -> Tombstone | None:
        return await self._db.run(lambda conn: expiry.tombstone(conn, task_id, time.time()))

    async def cached(
        self, user: str | None, kind: str, cache_key: str, fresh_s: float
    ) -> Task | None:
        since = time.time() - fresh_s
        return await self._db.run(lambda conn: expiry.cached(conn, user, kind, cache_key, since))

    async def create_key(self, key: ApiKey, key_hash: str) -> None:
        await self._db.write(lambda conn: keys.create(conn, key, key_hash))

    async def key_by_hash(self, key_hash: str) -> ApiKey | None:
        return await self._db.run(lambda conn: keys.by_hash(conn, key_hash))

    async def list_keys(self) -> list[ApiKey]:
        return await self._db.run(keys.list_all)

    async def revoke_key(self, key_id: str) -> ApiKey:
        return await self._db.write(lambda conn: keys.revoke(conn, key_id, time.time()))

    async def task_events(self, task_id: str, limit: int) -> list[Event]:
        return await self._db.run(lambda conn: feed.task_events(conn, task_id, limit))

    async def watch(self, after: str | None = None) -> AsyncGenerator[Event, None]:
        # A connection of its own, polled; the events table is read only when another
        # connection has committed (PRAGMA data_version changed), so idling is one pragma.
        # The version is read before the position: a commit in between is then read again
        # (and skipped by id) rather than left unread until the next commit.
        def start(conn: Conn) -> tuple[int, int]:
            version = conn.execute("PRAGMA data_version").fetchone()[0]
            if after is not None:
                return feed.resume_point(conn, after), -1  # -1: read at once
            last = conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]
            return last, version

        db = self._db
        watcher = await Database.open(
            f"sqlite:///{db.path.as_posix()}?busy_timeout_s={db.busy_timeout_s}"
        )
        try:
            last, version = await watcher.run(start)
        except BaseException:
            await watcher.aclose()
            raise
        return feed.follow(watcher, self._bell.listen(), last, version)


def _cancel(conn: Conn, task_id: str, now: float) -> Task:
    row = _one_task(conn, task_id)
    status = TaskStatus(row["status"])
    if status == TaskStatus.QUEUED:
        row = conn.execute(
            f"UPDATE tasks SET status = 'cancelled', finished_at = ?, error = 'cancelled',"
            f" waiting_for = NULL WHERE id = ? {_RETURN}",
            (now, task_id),
        ).fetchone()
        fair.give_back(conn, task_id)
        insert_event(conn, now, EventType.CANCELLED, row, TaskStatus.CANCELLED)
    elif status == TaskStatus.RUNNING and not row["cancel_requested"]:
        row = conn.execute(
            f"UPDATE tasks SET cancel_requested = 1 WHERE id = ? {_RETURN}", (task_id,)
        ).fetchone()
        insert_event(conn, now, EventType.CANCEL_REQUESTED, row, TaskStatus.RUNNING)
    return task_from_row(row)


def _terms(worker_id: str, lease_s: float) -> claims.LeaseTerms:
    """A new lease: worker, fresh token, expiry, and the time of the claim."""
    now = time.time()
    return (worker_id, secrets.token_hex(8), now + lease_s, now)
