"""RedisStore: the Store contract on Redis (key layout in ``__init__``, logic in ``*.lua``)."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any, Self

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from genqueue.backends.group import GroupCall, Send
from genqueue.backends.redis import events, scripts
from genqueue.backends.redis.claims import RedisClaims
from genqueue.backends.redis.connection import UNREACHABLE, connect, reached, reaching
from genqueue.backends.redis.expiry import RedisExpiry
from genqueue.backends.redis.keys import RedisKeys
from genqueue.backends.redis.limits import CAS_TRIES, NO_GATE, RedisLimits, Seen, exhausted
from genqueue.backends.redis.quotas import RedisQuotas
from genqueue.backends.redis.records import batch_from, service_time_from, task_from
from genqueue.backends.redis.webhooks import RedisWebhooks
from genqueue.backends.redis.workers import RedisWorkers
from genqueue.contracts import (
    OUTBOX_GRACE_S,
    BatchPage,
    Cancelled,
    Claim,
    Failed,
    Lease,
    LineEntry,
    Message,
    Outcome,
    Page,
    Requeue,
    Succeeded,
    Throttled,
    Waiting,
)
from genqueue.errors import (
    BackendUnavailableError,
    LeaseLostError,
    TaskNotFoundError,
)
from genqueue.models import (
    EXPIRED_KEPT_S,
    ApiKey,
    Batch,
    Event,
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

SCRIPTS = [
    "submit",
    "take_outbox",
    "claim",
    "claim_next",
    "position",
    "line",
    "renew",
    "progress",
    "add_event",
    "finish",
    "cancel",
    "requeue_expired",
    "mark_offline",
    "purge",
    "limits",
    "set_limiter",
    "wake",
    "upgrade",
]
LIST_CHUNK = 200
STRIDE = 1000  # fair tag units per task of weight 1 (research/scheduling.md 0.1)


class RedisStore:
    """The Store contract on Redis. See ``genqueue.contracts.Store`` for every guarantee."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        # Typed Any: redis-py types replies as unions of bytes, str and lists, which
        # decode_responses=True narrows to str at run time but not for mypy.
        self._r: Any = redis
        self._p = prefix
        self._s = scripts.load(redis, SCRIPTS, prelude=("common", "fair"))
        # A busy worker's claims and finishes travel together (see group.py).
        self._claims = RedisClaims(self._run)
        self._finish = GroupCall(self._group("finish"))
        self._limits = RedisLimits(self._run)
        self._workers = RedisWorkers(redis, prefix)
        self._keys = RedisKeys(redis, prefix)
        self._expiry = RedisExpiry(redis, prefix)
        self.webhooks = RedisWebhooks(redis, prefix)
        self.quotas = RedisQuotas(redis, prefix)

    @classmethod
    async def connect(cls, url: str) -> Self:
        store = cls(*connect(url))
        await store.ping()
        while await store._run("upgrade"):  # data of a version before the fair order
            pass
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
        items = [_item(t) for t in tasks]
        batch_json = ""
        if batch is not None:
            record = {
                "id": batch.id,
                "user": batch.user,
                "size": batch.size,
                "created_at": batch.created_at.timestamp(),
                "webhook": batch.webhook.model_dump_json() if batch.webhook else None,
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

    async def position(self, task_id: str) -> int | None:
        place = int(await self._run("position", task_id))
        if place < 0:
            raise TaskNotFoundError(f"no task {task_id!r}")
        return place or None

    async def line(self, queue: str, limit: int) -> list[LineEntry]:
        if limit <= 0:
            return []
        rows = await self._run("line", queue, limit)
        return [LineEntry(task_id, model) for task_id, model in rows]

    async def claim(self, task_id: str, worker_id: str, lease_s: float) -> Claim | Waiting | None:
        return await self._claims.claim(task_id, worker_id, lease_s)

    async def claim_next(
        self, queue: str, worker_id: str, lease_s: float
    ) -> Claim | Waiting | None:
        return await self._claims.claim_next(queue, worker_id, lease_s)

    async def renew(self, lease: Lease, lease_s: float) -> Lease:
        cancel, expires = await self._run("renew", lease.task_id, lease.token, lease_s)
        return Lease(
            lease.task_id,
            lease.worker_id,
            lease.token,
            lease.attempt,
            from_epoch(float(expires)),
            cancel == "1",
            lease.epoch,
        )

    async def set_progress(self, lease: Lease, progress: Progress) -> None:
        await self._run("progress", lease.task_id, lease.token, progress.fraction, progress.message)

    async def add_event(self, lease: Lease, event_type: str, data: dict[str, Any]) -> None:
        await self._run("add_event", lease.task_id, lease.token, event_type, json.dumps(data))

    async def finish(self, lease: Lease, outcome: Outcome) -> Task:
        args = _outcome_args(outcome)
        gate: tuple[Any, ...] = (*NO_GATE, "")
        for _ in range(CAS_TRIES):
            reply = await self._finish(lease.task_id, lease.token, *args, lease.attempt, *gate)
            if reply == "LEASE_LOST":
                raise LeaseLostError(f"lease of {lease.task_id} lost (finish)")
            if reply[0] == "done":
                return task_from(scripts.pairs(reply[1]))
            gate = Seen.of(reply).after(outcome, lease.epoch)
        raise exhausted(f"finish {lease.task_id}")

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

    async def configure_limits(self, policies: Mapping[str, LimitSettings]) -> None:
        await self._limits.configure(policies)

    async def limits(self) -> list[LimitStatus]:
        return await self._limits.statuses()

    async def wake_waiting(self) -> int:
        return await self._limits.wake()

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
    async def list_batches(self, user: str | None, limit: int, cursor: str | None) -> BatchPage:
        # Newest first: score created_at, ties by id, as the SQL stores order them.
        index = f"{self._p}:batches" if user is None else f"{self._p}:batches:user:{user}"
        start = 0
        if cursor is not None:
            rank = await self._r.zrevrank(index, cursor)
            if rank is None:
                return BatchPage([], None)
            start = rank + 1
        ids = await self._r.zrevrange(index, start, start + limit)
        async with self._r.pipeline(transaction=False) as pipe:
            for batch_id in ids[:limit]:
                pipe.hgetall(f"{self._p}:batch:{batch_id}")
                pipe.hgetall(f"{self._p}:batch:{batch_id}:counts")
            replies = await pipe.execute()
        batches = [
            batch_from(record, counts)
            for record, counts in zip(replies[::2], replies[1::2], strict=True)
            if record
        ]
        more = len(ids) > limit and bool(batches)
        return BatchPage(batches, batches[-1].id if more else None)

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
    async def service_times(self) -> list[ServiceTime]:
        rows = await self._r.hgetall(f"{self._p}:service_times")
        return sorted(
            (service_time_from(name, value) for name, value in rows.items()),
            key=lambda t: (t.queue, t.kind),
        )

    async def register_worker(self, info: WorkerInfo) -> None:
        await self._workers.register_worker(info)

    async def heartbeat_worker(
        self,
        worker_id: str,
        running: list[str],
        succeeded: int,
        failed: int,
        degraded: str | None = None,
        models: Sequence[str] = (),
    ) -> None:
        await self._workers.heartbeat_worker(
            worker_id, running, succeeded, failed, degraded, models=models
        )

    async def stop_worker(self, worker_id: str) -> None:
        await self._workers.stop_worker(worker_id)

    async def list_workers(self) -> list[WorkerInfo]:
        return await self._workers.list_workers()

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

    async def mark_offline(self, silent_s: float) -> list[str]:
        ids: list[str] = await self._run("mark_offline", silent_s)
        return ids

    async def purge(self, older_than_s: float, kept_s: float = EXPIRED_KEPT_S) -> list[str]:
        ids: list[str] = await self._run("purge", older_than_s, kept_s)
        await self.webhooks.purge(older_than_s)  # after: the tasks it took are gone now
        return ids

    @reached
    async def task_events(self, task_id: str, limit: int) -> list[Event]:
        return await events.task_events(self._r, self._p, task_id, limit)

    async def watch(self, after: str | None = None) -> AsyncGenerator[Event, None]:
        return await events.watch(self._r, f"{self._p}:events", after)


def _item(task: NewTask) -> dict[str, Any]:
    """A new task as submit.lua reads it: absent values left out (cjson turns null into a
    truthy sentinel), times as epoch seconds in text (a Lua number would lose precision),
    with its fair tag increment (Python's rounding, as every store)."""
    fields = {
        **task.model_dump(),
        "payload": json.dumps(task.payload),
        "weight": repr(task.weight),
        "fair_inc": max(1, round(STRIDE / task.weight)),
        "webhook": task.webhook.model_dump_json() if task.webhook else None,
    }
    for name in ("not_before", "start_by"):
        if fields[name] is not None:
            fields[name] = repr(fields[name].timestamp())
    if task.cancel_after_s is not None:
        fields["cancel_after_s"] = repr(task.cancel_after_s)
    return {k: v for k, v in fields.items() if v is not None}


def _outcome_args(outcome: Outcome) -> tuple[str, str, float, int, str]:
    """An outcome as finish.lua reads it: kind, value (result JSON or error), delay_s, refund,
    batch_size ('' if the run was not batched, or the outcome does not tell it)."""
    match outcome:
        case Succeeded(result=result, batch_size=size):
            return "succeeded", json.dumps(result), 0.0, 0, _text(size)
        case Failed(error=error, batch_size=size):
            return "failed", error, 0.0, 0, _text(size)
        case Cancelled(reason=reason):
            return "cancelled", reason, 0.0, 0, ""
        case Requeue(delay_s=delay_s, error=error, refund=refund, batch_size=size):
            return "requeue", error or "", delay_s, int(refund), _text(size)
        case Throttled(delay_s=delay_s, error=error):
            return "throttled", error, delay_s, 1, ""


def _text(size: int | None) -> str:
    return "" if size is None else str(size)


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
