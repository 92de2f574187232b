"""RedisStore: the Store contract on Redis (key layout in ``__init__``, logic in ``*.lua``)."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncGenerator, Sequence
from typing import Any, Self

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from genqueue.backends.group import GroupCall, Send
from genqueue.backends.redis import scripts
from genqueue.backends.redis.connection import UNREACHABLE, connect, reached, reaching
from genqueue.backends.redis.records import batch_from, event_from, task_from, worker_from
from genqueue.contracts import (
    OUTBOX_GRACE_S,
    Cancelled,
    Claim,
    Failed,
    Lease,
    Message,
    Outcome,
    Page,
    Requeue,
    Succeeded,
)
from genqueue.errors import (
    BackendUnavailableError,
    EventsExpiredError,
    LeaseLostError,
    TaskNotFoundError,
)
from genqueue.models import (
    Batch,
    Event,
    NewTask,
    Progress,
    QueueStats,
    Task,
    TaskFilter,
    TaskStatus,
    WorkerInfo,
    from_epoch,
)

SCRIPTS = [
    "submit",
    "take_outbox",
    "claim",
    "renew",
    "progress",
    "add_event",
    "finish",
    "cancel",
    "requeue_expired",
    "mark_offline",
    "purge",
]
EVENTS_BLOCK_MS = 1000
LIST_CHUNK = 200


class RedisStore:
    """The Store contract on Redis. See ``genqueue.contracts.Store`` for every guarantee."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        # Typed Any: redis-py types replies as unions of bytes, str and lists, which
        # decode_responses=True narrows to str at run time but not for mypy.
        self._r: Any = redis
        self._p = prefix
        self._s = scripts.load(redis, SCRIPTS, prelude="common")
        # A busy worker's claims and finishes travel together (see group.py).
        self._claim = GroupCall(self._group("claim"))
        self._finish = GroupCall(self._group("finish"))

    @classmethod
    async def connect(cls, url: str) -> Self:
        store = cls(*connect(url))
        await store.ping()
        return store

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._r.aclose()

    def _group(self, name: str) -> Send:
        async def send(calls: list[Sequence[Any]]) -> list[Any]:
            result: list[Any] = await self._run(name, *(arg for call in calls for arg in call))
            return result

        return send

    async def _run(self, name: str, *args: Any) -> Any:
        try:
            return await self._s[name](args=[self._p, *args])
        except ResponseError as exc:
            if "LEASE_LOST" in str(exc):
                raise LeaseLostError(f"lease lost ({name})") from None
            raise
        except UNREACHABLE as exc:
            raise BackendUnavailableError(f"Redis: {exc}") from exc

    @reached
    async def ping(self) -> None:
        await self._r.ping()

    @reached
    async def submit(
        self, tasks: Sequence[NewTask], *, batch: Batch | None = None
    ) -> list[tuple[Task, bool]]:
        items = [
            {
                k: v
                for k, v in {**t.model_dump(), "payload": json.dumps(t.payload)}.items()
                if v is not None
            }
            for t in tasks
        ]
        batch_json = ""
        if batch is not None:
            record = {
                "id": batch.id,
                "user": batch.user,
                "size": batch.size,
                "created_at": batch.created_at.timestamp(),
            }
            # cjson turns null into a truthy sentinel: leave absent values out instead.
            batch_json = json.dumps({k: v for k, v in record.items() if v is not None})
        results = await self._run("submit", batch_json, json.dumps(items), OUTBOX_GRACE_S)
        tasks = await self._get_many([task_id for task_id, _ in results])
        return [(task, bool(created)) for task, (_, created) in zip(tasks, results, strict=True)]

    async def _get_many(self, ids: list[str]) -> list[Task]:
        async with self._r.pipeline(transaction=False) as pipe:
            for task_id in ids:
                pipe.hgetall(f"{self._p}:task:{task_id}")
            return [task_from(data) for data in await pipe.execute()]

    @reached
    async def get(self, task_id: str) -> Task:
        data = await self._r.hgetall(f"{self._p}:task:{task_id}")
        if not data:
            raise TaskNotFoundError(f"no task {task_id!r}")
        return task_from(data)

    @reached
    async def list_tasks(self, where: TaskFilter, limit: int, cursor: str | None) -> Page:
        # Walk the most selective index, newest first; check the other filters per record.
        index = f"{self._p}:tasks"
        for name in ("batch_id", "user", "kind", "queue", "status"):
            value = getattr(where, name)
            if value is not None:
                index = f"{self._p}:{'status' if name == 'status' else 'by:' + name}:{value}"
                break
        top = f"({cursor}" if cursor else "+inf"
        found: list[tuple[int, Task]] = []
        while len(found) <= limit:
            chunk = await self._r.zrevrangebyscore(
                index, top, "-inf", start=0, num=LIST_CHUNK, withscores=True
            )
            async with self._r.pipeline(transaction=False) as pipe:
                for task_id, _ in chunk:
                    pipe.hgetall(f"{self._p}:task:{task_id}")
                records = await pipe.execute()
            for (_, seq), data in zip(chunk, records, strict=True):
                if data and _matches(data, where):
                    found.append((int(seq), task_from(data)))
            if len(chunk) < LIST_CHUNK:
                break
            top = f"({int(chunk[-1][1])}"
        more = len(found) > limit
        found = found[:limit]
        return Page([t for _, t in found], str(found[-1][0]) if more else None)

    @reached
    async def position(self, task_id: str) -> int | None:
        status, queue = await self._r.hmget(f"{self._p}:task:{task_id}", ["status", "queue"])
        if status is None:
            raise TaskNotFoundError(f"no task {task_id!r}")
        if status != TaskStatus.QUEUED:
            return None
        rank = await self._r.zrank(f"{self._p}:queued:{queue}", task_id)
        return None if rank is None else int(rank) + 1

    async def claim(self, task_id: str, worker_id: str, lease_s: float) -> Claim | None:
        token = secrets.token_hex(8)
        flat = await self._claim(task_id, worker_id, token, lease_s)
        if not flat:
            return None
        task = task_from(scripts.pairs(flat))
        assert task.lease_expires_at is not None
        lease = Lease(
            task_id, worker_id, token, task.attempts, task.lease_expires_at, task.cancel_requested
        )
        return Claim(lease, task)

    async def renew(self, lease: Lease, lease_s: float) -> Lease:
        cancel, expires = await self._run("renew", lease.task_id, lease.token, lease_s)
        return Lease(
            lease.task_id,
            lease.worker_id,
            lease.token,
            lease.attempt,
            from_epoch(float(expires)),
            cancel == "1",
        )

    async def set_progress(self, lease: Lease, progress: Progress) -> None:
        await self._run("progress", lease.task_id, lease.token, progress.fraction, progress.message)

    async def add_event(self, lease: Lease, event_type: str, data: dict[str, Any]) -> None:
        await self._run("add_event", lease.task_id, lease.token, event_type, json.dumps(data))

    async def finish(self, lease: Lease, outcome: Outcome) -> Task:
        match outcome:
            case Succeeded(result=result):
                args: tuple[Any, ...] = ("succeeded", json.dumps(result), 0, 0)
            case Failed(error=error):
                args = ("failed", error, 0, 0)
            case Cancelled(reason=reason):
                args = ("cancelled", reason, 0, 0)
            case Requeue(delay_s=delay_s, error=error, refund=refund):
                args = ("requeue", error or "", delay_s, int(refund))
        flat = await self._finish(lease.task_id, lease.token, *args, lease.attempt)
        if flat == "LEASE_LOST":
            raise LeaseLostError(f"lease of {lease.task_id} lost (finish)")
        return task_from(scripts.pairs(flat))

    async def cancel(self, task_id: str) -> Task:
        await self.get(task_id)
        await self._run("cancel", task_id)
        return await self.get(task_id)

    @reached
    async def cancel_batch(self, batch_id: str) -> Batch:
        await self.get_batch(batch_id)
        for status in (TaskStatus.QUEUED, TaskStatus.RUNNING):
            ids = await self._r.zrange(f"{self._p}:by:batch_id:{batch_id}", 0, -1)
            open_ids = [
                i for i, s in zip(ids, await self._statuses(ids), strict=True) if s == status
            ]
            for start in range(0, len(open_ids), 500):
                await self._run("cancel", *open_ids[start : start + 500])
        return await self.get_batch(batch_id)

    async def _statuses(self, ids: list[str]) -> list[str | None]:
        async with self._r.pipeline(transaction=False) as pipe:
            for task_id in ids:
                pipe.hget(f"{self._p}:task:{task_id}", "status")
            statuses: list[str | None] = await pipe.execute()
        return statuses

    async def requeue_expired(self) -> list[Task]:
        return await self._get_many(await self._run("requeue_expired"))

    async def take_outbox(self, limit: int, hold_s: float) -> list[Message]:
        rows = await self._run("take_outbox", limit, hold_s)
        return [Message(q, task_id, int(p), float(d)) for task_id, q, p, d in rows]

    async def clear_outbox(self, task_ids: Sequence[str]) -> None:
        if task_ids:
            with reaching():
                await self._r.zrem(f"{self._p}:outbox", *task_ids)

    @reached
    async def get_batch(self, batch_id: str) -> Batch:
        record = await self._r.hgetall(f"{self._p}:batch:{batch_id}")
        if not record:
            raise TaskNotFoundError(f"no batch {batch_id!r}")
        counts = await self._r.hgetall(f"{self._p}:batch:{batch_id}:counts")
        return batch_from(record, counts)

    @reached
    async def queue_stats(self) -> list[QueueStats]:
        queues = sorted(await self._r.smembers(f"{self._p}:queues"))
        stats = []
        for queue in queues:
            counts = await self._r.hgetall(f"{self._p}:counts:{queue}")
            stats.append(
                QueueStats(
                    queue=queue,
                    counts={TaskStatus(s): int(n) for s, n in counts.items() if int(n) > 0},
                )
            )
        return [s for s in stats if s.counts]

    @reached
    async def register_worker(self, info: WorkerInfo) -> None:
        now = await self._now()
        key = f"{self._p}:worker:{info.id}"
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            pipe.hset(
                key,
                mapping={
                    "id": info.id,
                    "name": info.name,
                    "host": info.host,
                    "pid": info.pid,
                    "queues": json.dumps(info.queues),
                    "concurrency": info.concurrency,
                    "status": "online",
                    "started_at": info.started_at.timestamp(),
                    "last_seen": now,
                    "running": "[]",
                    "succeeded": 0,
                    "failed": 0,
                },
            )
            pipe.zadd(f"{self._p}:workers", {info.id: now})
            pipe.zadd(f"{self._p}:workers:online", {info.id: now})
            await pipe.execute()

    @reached
    async def heartbeat_worker(
        self,
        worker_id: str,
        running: list[str],
        succeeded: int,
        failed: int,
        degraded: str | None = None,
    ) -> None:
        now = await self._now()
        key = f"{self._p}:worker:{worker_id}"
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.hset(
                key,
                mapping={
                    "last_seen": now,
                    "running": json.dumps(running),
                    "succeeded": succeeded,
                    "failed": failed,
                    "status": "online" if degraded is None else "degraded",
                    "reason": degraded or "",
                },
            )
            # A degraded worker is alive: it stays in workers:online for mark_offline.
            pipe.zadd(f"{self._p}:workers", {worker_id: now})
            pipe.zadd(f"{self._p}:workers:online", {worker_id: now})
            await pipe.execute()

    @reached
    async def stop_worker(self, worker_id: str) -> None:
        now = await self._now()
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.hset(
                f"{self._p}:worker:{worker_id}",
                mapping={"status": "stopped", "running": "[]", "reason": "", "last_seen": now},
            )
            pipe.zadd(f"{self._p}:workers", {worker_id: now})
            pipe.zrem(f"{self._p}:workers:online", worker_id)
            await pipe.execute()

    @reached
    async def list_workers(self) -> list[WorkerInfo]:
        ids = await self._r.zrevrange(f"{self._p}:workers", 0, -1)
        async with self._r.pipeline(transaction=False) as pipe:
            for worker_id in ids:
                pipe.hgetall(f"{self._p}:worker:{worker_id}")
            records = await pipe.execute()
        workers = [worker_from(r) for r in records if r]
        return sorted(workers, key=lambda w: w.started_at, reverse=True)

    async def mark_offline(self, silent_s: float) -> list[str]:
        ids: list[str] = await self._run("mark_offline", silent_s)
        return ids

    async def purge(self, older_than_s: float) -> list[str]:
        ids: list[str] = await self._run("purge", older_than_s)
        return ids

    @reached
    async def _now(self) -> float:
        seconds, micros = await self._r.time()
        return float(seconds) + float(micros) / 1_000_000

    async def watch(self, after: str | None = None) -> AsyncGenerator[Event, None]:
        key = f"{self._p}:events"
        try:
            if after is not None:
                return _follow(self._r, key, await _resume_point(self._r, key, after))
            newest = await self._r.xrevrange(key, count=1)
        except UNREACHABLE as exc:
            raise BackendUnavailableError(f"Redis: {exc}") from exc
        return _follow(self._r, key, newest[0][0] if newest else "0-0")


def _stream_id(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


async def _resume_point(redis: Any, key: str, after: str) -> str:
    """``after``, if the stream still holds every entry after it. Trimming (MAXLEN) leaves
    no trace but the first entry, so losing only ``after`` itself counts as a loss too."""
    try:
        position = _stream_id(after)
    except ValueError:
        raise EventsExpiredError(f"{after!r} is not a Redis stream id") from None
    try:
        info = await redis.xinfo_stream(key)
    except ResponseError:  # no such key: nothing was ever kept here (or Redis lost it)
        if position == (0, 0):
            return after
        raise EventsExpiredError(f"event {after!r} is not kept: {key} does not exist") from None
    newest = _stream_id(info["last-generated-id"])
    first = info.get("first-entry")
    kept_from = _stream_id(first[0]) if first else newest
    trimmed = info.get("entries-added", -1) != info["length"]  # unknown before Redis 7
    if position > newest or (trimmed and position < kept_from):
        raise EventsExpiredError(f"event {after!r} is no longer kept in {key}")
    return after


async def _follow(redis: Any, key: str, last: str) -> AsyncGenerator[Event, None]:
    # A connection of its own for the blocking reads, so they never hold up other commands.
    reader = redis.client()
    try:
        while True:
            try:
                reply = await reader.xread({key: last}, count=500, block=EVENTS_BLOCK_MS)
            except UNREACHABLE as exc:
                raise BackendUnavailableError(f"Redis: {exc}") from exc
            for _, entries in reply:
                for entry_id, fields in entries:
                    last = entry_id
                    yield event_from(entry_id, fields)
    finally:
        await reader.aclose()


def _matches(data: dict[str, str], where: TaskFilter) -> bool:
    return all(
        value is None or data.get(name) == str(value)
        for name, value in (
            ("user", where.user),
            ("status", where.status),
            ("kind", where.kind),
            ("batch_id", where.batch_id),
            ("queue", where.queue),
        )
    )
