"""The worker registry of the Redis store (``{p}:worker:{id}``, ``{p}:workers``,
``{p}:workers:online``); ``mark_offline.lua`` ends the leases of silent ones."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis

from genqueue.backends.redis.connection import reached
from genqueue.backends.redis.records import worker_from
from genqueue.models import WorkerInfo


class RedisWorkers:
    """``register_worker``, ``heartbeat_worker``, ``stop_worker``, ``list_workers``."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._r: Any = redis  # typed Any as in RedisStore
        self._p = prefix

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
                    "models": json.dumps(info.models),
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
        models: Sequence[str] = (),
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
                    "models": json.dumps(list(models)),
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
                mapping={
                    "status": "stopped",
                    "running": "[]",
                    "reason": "",
                    "models": "[]",
                    "last_seen": now,
                },
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

    @reached
    async def _now(self) -> float:
        seconds, micros = await self._r.time()
        return float(seconds) + float(micros) / 1_000_000
