"""PostgresStore: the Store contract on PostgreSQL (schema in ``migrations/``, SQL in
``queries.py``, the event feed in ``feed.py``, shared limits in ``limits.py``, fair order in
``fair.py`` and ``tags.py``).

Each verb is one statement on a pooled connection: the row change and its events commit
together, claims and fenced updates rely on row locks, and lease recovery takes rows with
``FOR UPDATE SKIP LOCKED`` so any number of sweepers requeue each task once. Claims and
finishes of tasks whose resource has a limiter are one transaction each, in ``limits.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Self

from genqueue.backends.group import GroupCall, Send
from genqueue.backends.postgres import queries as q
from genqueue.backends.postgres.db import Conn, Database
from genqueue.backends.postgres.expiry import PURGE_TASKS, PostgresExpiry
from genqueue.backends.postgres.fair import (
    LINE_HEAD,
    POSITION,
    ROLLUP,
    ROLLUP_EVERY_S,
    VACUUM_DELTAS,
    FairClaims,
)
from genqueue.backends.postgres.feed import open_feed
from genqueue.backends.postgres.keys import PostgresKeys
from genqueue.backends.postgres.limits import Limits
from genqueue.backends.postgres.quotas import PostgresQuotas
from genqueue.backends.postgres.rows import (
    TASK_COLUMNS,
    batch_from_row,
    event_from_row,
    finish_of,
    lease_from,
    task_from_row,
    worker_from_row,
)
from genqueue.backends.postgres.webhooks import PURGE as PURGE_WEBHOOKS
from genqueue.backends.postgres.webhooks import PostgresWebhooks
from genqueue.backends.postgres.webhooks import submit as submit_with_webhooks
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
from genqueue.errors import BackendUnavailableError, LeaseLostError, TaskNotFoundError
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
)
from genqueue.settings import LimitSettings

log = logging.getLogger(__name__)

POOL_SIZE = 8
EVENTS_KEEP_S = 600.0  # events feed live streams only; the task record is the history
_FILTER_COLUMNS = {
    "user": "user_name",
    "status": "status",
    "kind": "kind",
    "batch_id": "batch_id",
    "queue": "queue",
}
Then = Callable[[Conn, list[Any]], Awaitable[None]]


class PostgresStore:
    """The Store contract on PostgreSQL. See ``genqueue.contracts.Store`` for every guarantee."""

    def __init__(self, db: Database) -> None:
        self._db = db
        # A busy worker's claims and finishes share one transaction, so one WAL flush
        # (fdatasync, ~0.5 ms here) serves many of them (see genqueue/backends/group.py).
        self._claims = GroupCall(self._in_one_transaction(q.CLAIM))
        # A lone finish moves its service time in its own statement; a group's runs move
        # theirs at its end, in (queue, kind) order, so that groups cannot deadlock there.
        self._finishes = GroupCall(
            self._in_one_transaction(q.FINISH_UNSAMPLED, alone=q.FINISH, then=_add_service_times)
        )
        self._limits = Limits(db)
        self._keys = PostgresKeys(db)
        self._expiry = PostgresExpiry(db)
        self.webhooks = PostgresWebhooks(db)
        self.quotas = PostgresQuotas(db)
        self._fair = FairClaims(db, self._limits)
        self._rollups: asyncio.Task[None] | None = None

    def _in_one_transaction(
        self, sql: str, *, alone: str | None = None, then: Then | None = None
    ) -> Send:
        """Run ``sql`` once per call, all in one transaction, rows locked in task id order
        (the first argument) so two such batches cannot deadlock, then ``then``; results in
        call order. A lone call runs ``alone`` (default ``sql``) as one statement."""

        async def send(calls: list[Sequence[Any]]) -> list[Any]:
            order = sorted(range(len(calls)), key=lambda i: str(calls[i][0]))

            async def run(conn: Conn) -> list[Any]:
                if len(calls) == 1:
                    return [await conn.fetchrow(alone or sql, *calls[0])]
                rows: list[Any] = [None] * len(calls)
                async with conn.transaction():
                    for i in order:
                        rows[i] = await conn.fetchrow(sql, *calls[i])
                    if then is not None:
                        await then(conn, rows)
                return rows

            return await self._db.run(run)

        return send

    @classmethod
    async def connect(cls, url: str) -> Self:
        store = cls(await Database.open(url, POOL_SIZE))
        store._rollups = asyncio.create_task(store._roll_up(), name="genqueue-rank-rollup")
        return store

    async def _roll_up(self) -> None:
        """Fold the line's deltas into its buckets every second, so that ``position`` adds
        a second's worth of deltas at most (migrations/007_rank.sql). Every store does it;
        one at a time does the work. An outage only delays it."""
        while True:
            await asyncio.sleep(ROLLUP_EVERY_S)
            try:
                if await self._db.fetchval(ROLLUP):
                    # Every fold leaves the deltas dead; position reads past dead rows until
                    # a vacuum, and autovacuum comes by the minute. A second's worth is small.
                    await self._db.execute(VACUUM_DELTAS)
            except BackendUnavailableError as exc:
                log.debug("rank roll-up skipped: %s", exc)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._rollups is not None:
            self._rollups.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._rollups
        await self._db.aclose()

    async def ping(self) -> None:
        await self._db.fetchval("SELECT 1")

    async def submit(
        self, tasks: Sequence[NewTask], *, batch: Batch | None = None
    ) -> list[tuple[Task, bool]]:
        if not tasks and batch is None:
            return []
        columns: list[list[Any]] = [
            [t.id for t in tasks],
            [t.kind for t in tasks],
            [t.queue for t in tasks],
            [json.dumps(t.payload) for t in tasks],
            [t.user for t in tasks],
            [t.priority for t in tasks],
            [t.batch_id for t in tasks],
            [t.idempotency_key for t in tasks],
            [t.max_attempts for t in tasks],
            [t.resource for t in tasks],
            [t.not_before for t in tasks],
            [t.start_by for t in tasks],
            [t.cancel_after_s for t in tasks],
            [t.weight for t in tasks],
            [t.model for t in tasks],
        ]
        head = (
            (batch.id, batch.user, batch.created_at, batch.size)
            if batch is not None
            else (None, None, None, None)
        )
        args = [*head, *columns, OUTBOX_GRACE_S, [t.cache_key for t in tasks]]
        rows = await self._db.run(
            lambda conn: submit_with_webhooks(conn, q.SUBMIT, args, tasks, batch)
        )
        found = {r["n"]: (task_from_row(r), r["created"]) for r in rows}
        if len(found) < len(tasks):
            # Keys taken by a transaction that committed while ours ran: ours skipped them,
            # and only now can they be read.
            keys = [t.idempotency_key for t in tasks]
            taken = {
                r["idempotency_key"]: task_from_row(r)
                for r in await self._db.fetch(q.BY_IDEMPOTENCY_KEY, keys)
            }
            for n, t in enumerate(tasks, 1):
                if n not in found and t.idempotency_key in taken:
                    found[n] = (taken[t.idempotency_key], False)
        return [found[n] for n in range(1, len(tasks) + 1)]

    async def get(self, task_id: str) -> Task:
        row = await self._db.fetchrow(q.GET, task_id)
        if row is None:
            raise TaskNotFoundError(f"no task {task_id!r}")
        return task_from_row(row)

    async def list_tasks(self, where: TaskFilter, limit: int, cursor: str | None) -> Page:
        clauses: list[str] = []
        params: list[Any] = []
        for name, column in _FILTER_COLUMNS.items():
            value = getattr(where, name)
            if value is not None:
                params.append(str(value))
                clauses.append(f"{column} = ${len(params)}")
        if cursor is not None:
            params.append(int(cursor))
            clauses.append(f"seq < ${len(params)}")
        sql = f"SELECT seq, {TASK_COLUMNS} FROM tasks"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += f" ORDER BY seq DESC LIMIT {int(limit) + 1}"
        rows = await self._db.fetch(sql, *params)
        more = len(rows) > limit
        rows = rows[:limit]
        return Page(
            tasks=[task_from_row(r) for r in rows],
            next_cursor=str(rows[-1]["seq"]) if more and rows else None,
        )

    async def position(self, task_id: str) -> int | None:
        row = await self._db.fetchrow(POSITION, task_id)
        if row is None:
            raise TaskNotFoundError(f"no task {task_id!r}")
        return None if row["position"] is None else int(row["position"])

    async def line(self, queue: str, limit: int) -> list[LineEntry]:
        if limit <= 0:
            return []
        rows = await self._db.fetch(LINE_HEAD, queue, limit)
        return [LineEntry(r["id"], r["model"]) for r in rows]

    async def claim(self, task_id: str, worker_id: str, lease_s: float) -> Claim | Waiting | None:
        token = secrets.token_hex(8)
        # Safe to retry: if a lost reply hid a success, the retry finds the task running and
        # returns None; the unrenewed lease then expires and the task runs again.
        row = await self._claims(task_id, worker_id, token, float(lease_s))
        if row is None:
            return None
        if row["outcome"] == "limited":  # it needs a permit of its resource
            return await self._limits.claim(
                task_id, worker_id, token, float(lease_s), row["resource"]
            )
        task = task_from_row(row)
        return Claim(lease_from(task, token), task)

    async def claim_next(
        self, queue: str, worker_id: str, lease_s: float
    ) -> Claim | Waiting | None:
        return await self._fair.claim_next(queue, worker_id, lease_s)

    async def renew(self, lease: Lease, lease_s: float) -> Lease:
        row = await self._db.fetchrow(q.RENEW, lease.task_id, lease.token, float(lease_s))
        if row is None:
            raise LeaseLostError(f"lease on {lease.task_id} lost")
        return replace(
            lease,
            expires_at=row["lease_expires_at"],
            cancel_requested=row["cancel_requested"],
        )

    async def set_progress(self, lease: Lease, progress: Progress) -> None:
        n = await self._db.fetchval(
            q.PROGRESS, lease.task_id, lease.token, progress.fraction, progress.message
        )
        if not n:
            raise LeaseLostError(f"lease on {lease.task_id} lost")

    async def add_event(self, lease: Lease, event_type: str, data: dict[str, Any]) -> None:
        if event_type == EventType.PREVIEW:
            event_id = await self._db.fetchval(q.ADD_PREVIEW, lease.task_id, lease.token, data)
        else:
            event_id = await self._db.fetchval(
                q.ADD_EVENT, lease.task_id, lease.token, event_type, data
            )
        if event_id is None:
            raise LeaseLostError(f"lease on {lease.task_id} lost")

    async def finish(self, lease: Lease, outcome: Outcome) -> Task:
        change = finish_of(lease, outcome)
        row = None
        if lease.epoch is None:  # no permit held, unless its resource got a limiter since
            # Safe to retry: fenced by the token, a repeat of a stored outcome is LeaseLostError.
            row = await self._finishes(lease.task_id, lease.token, *change.params())
        if lease.epoch is not None or (row is not None and row["outcome"] == "limited"):
            row = await self._limits.finish(lease, change)
        if row is None:
            raise LeaseLostError(f"lease on {lease.task_id} lost; outcome not recorded")
        return task_from_row(row)

    async def cancel(self, task_id: str) -> Task:
        row = await self._db.fetchrow(q.CANCEL, task_id)
        if row is None:
            raise TaskNotFoundError(f"no task {task_id!r}")
        return task_from_row(row)

    async def cancel_batch(self, batch_id: str) -> Batch:
        await self.get_batch(batch_id)
        await self._db.fetchval(q.CANCEL_BATCH, batch_id)
        return await self.get_batch(batch_id)

    async def requeue_expired(self) -> list[Task]:
        # Not retried: a repeat after a lost reply would find nothing left to return.
        rows = await self._db.fetch(q.REQUEUE_EXPIRED, retry=False)
        return [task_from_row(r) for r in rows]

    async def configure_limits(self, policies: Mapping[str, LimitSettings]) -> None:
        await self._limits.configure(policies)

    async def limits(self) -> list[LimitStatus]:
        return await self._limits.statuses()

    async def wake_waiting(self) -> int:
        return await self._limits.wake_waiting()

    async def take_outbox(self, limit: int, hold_s: float) -> list[Message]:
        rows = await self._db.fetch(q.TAKE_OUTBOX, limit, float(hold_s))
        return [Message(r["queue"], r["id"], r["priority"], r["delay_s"]) for r in rows]

    async def clear_outbox(self, task_ids: Sequence[str]) -> None:
        if task_ids:
            await self._db.execute(q.CLEAR_OUTBOX, list(task_ids))

    async def get_batch(self, batch_id: str) -> Batch:
        row = await self._db.fetchrow(q.GET_BATCH, batch_id)
        if row is None:
            raise TaskNotFoundError(f"no batch {batch_id!r}")
        return batch_from_row(row)

    async def list_batches(self, user: str | None, limit: int, cursor: str | None) -> BatchPage:
        rows = await self._db.fetch(q.LIST_BATCHES, user, cursor, limit + 1)
        batches = [batch_from_row(r) for r in rows[:limit]]
        return BatchPage(batches, batches[-1].id if len(rows) > limit else None)

    async def queue_stats(self) -> list[QueueStats]:
        by_queue: dict[str, dict[TaskStatus, int]] = {}
        for row in await self._db.fetch(q.QUEUE_STATS):
            by_queue.setdefault(row["queue"], {})[TaskStatus(row["status"])] = row["n"]
        return [QueueStats(queue=name, counts=c) for name, c in sorted(by_queue.items())]

    async def service_times(self) -> list[ServiceTime]:
        rows = await self._db.fetch(q.SERVICE_TIMES)
        times = [
            ServiceTime(
                queue=r["queue"],
                kind=r["kind"],
                mean_s=r["mean_s"],
                deviation_s=r["deviation_s"],
                samples=r["samples"],
            )
            for r in rows
        ]
        return sorted(times, key=lambda t: (t.queue, t.kind))

    async def register_worker(self, info: WorkerInfo) -> None:
        await self._db.execute(
            q.REGISTER_WORKER,
            info.id,
            info.name,
            info.host,
            info.pid,
            info.queues,
            info.concurrency,
            info.started_at,
            info.models,
        )

    async def heartbeat_worker(
        self,
        worker_id: str,
        running: list[str],
        succeeded: int,
        failed: int,
        degraded: str | None = None,
        models: Sequence[str] = (),
    ) -> None:
        await self._db.execute(
            q.HEARTBEAT_WORKER, worker_id, running, succeeded, failed, degraded, list(models)
        )

    async def stop_worker(self, worker_id: str) -> None:
        await self._db.execute(q.STOP_WORKER, worker_id)

    async def list_workers(self) -> list[WorkerInfo]:
        return [worker_from_row(r) for r in await self._db.fetch(q.LIST_WORKERS)]

    async def mark_offline(self, silent_s: float) -> list[str]:
        return [r["id"] for r in await self._db.fetch(q.MARK_OFFLINE, float(silent_s))]

    async def purge(self, older_than_s: float, kept_s: float = EXPIRED_KEPT_S) -> list[str]:
        age = float(older_than_s)

        async def run(conn: Conn) -> list[str]:
            async with conn.transaction():
                ids = [r["id"] for r in await conn.fetch(PURGE_TASKS, age, float(kept_s))]
                await conn.execute(q.PURGE_BATCHES, age)
                await conn.execute(q.PURGE_EVENTS, min(age, EVENTS_KEEP_S))
                await conn.execute(q.PURGE_WORKERS, age)
                await conn.execute(PURGE_WEBHOOKS, age)
            return ids

        return await self._db.run(run, retry=False)

    async def create_key(self, key: ApiKey, key_hash: str) -> None:
        await self._keys.create_key(key, key_hash)

    async def key_by_hash(self, key_hash: str) -> ApiKey | None:
        return await self._keys.key_by_hash(key_hash)

    async def list_keys(self) -> list[ApiKey]:
        return await self._keys.list_keys()

    async def revoke_key(self, key_id: str) -> ApiKey:
        return await self._keys.revoke_key(key_id)

    async def tombstone(self, task_id: str) -> Tombstone | None:
        return await self._expiry.tombstone(task_id)

    async def cached(
        self, user: str | None, kind: str, cache_key: str, fresh_s: float
    ) -> Task | None:
        return await self._expiry.cached(user, kind, cache_key, fresh_s)

    async def task_events(self, task_id: str, limit: int) -> list[Event]:
        rows = await self._db.fetch(q.TASK_EVENTS, task_id, max(limit, 0))
        return [event_from_row(row) for row in rows]

    async def watch(self, after: str | None = None) -> AsyncGenerator[Event, None]:
        return await open_feed(self._db.target, after)


async def _add_service_times(conn: Conn, rows: list[Any]) -> None:
    """Move the service times by the Succeeded and Failed runs that FINISH_UNSAMPLED stored."""
    runs = [
        r
        for r in rows
        if r is not None
        and r["outcome"] == "finished"
        and r["status"] in (TaskStatus.SUCCEEDED, TaskStatus.FAILED)
        and r["started_at"] is not None
    ]
    if runs:
        await conn.execute(
            q.ADD_SERVICE_TIMES,
            [r["queue"] for r in runs],
            [r["kind"] for r in runs],
            [(r["finished_at"] - r["started_at"]).total_seconds() for r in runs],
        )
