"""The Redis store's result expiry and result cache: plain reads of what the scripts keep.

{p}:tombstone:{id}            hash: user ('' for none), expired_at (epoch s), written by
                              purge.lua for each purged task, expiring after kept_s
{p}:cache:{cache_key}:{user}  zset: ids of the user's tasks ('' for none) submitted with
                              that cache key, by seq (submit.lua adds, purge.lua removes);
                              the key is 64 hex digits, so the user after it is unambiguous
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from genqueue.backends.redis.connection import reached
from genqueue.backends.redis.records import task_from
from genqueue.models import Task, TaskStatus, Tombstone, from_epoch

# How many of the newest tasks with a key a lookup looks at: a user rarely has more than a
# few unfinished or failed ones in front of the last success.
LOOK_AT = 20


class RedisExpiry:
    """``tombstone`` and ``cached`` of the store."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._r: Any = redis
        self._p = prefix

    @reached
    async def tombstone(self, task_id: str) -> Tombstone | None:
        data = await self._r.hgetall(f"{self._p}:tombstone:{task_id}")
        if not data:
            return None
        return Tombstone(
            task_id=task_id,
            user=data.get("user") or None,
            expired_at=from_epoch(float(data["expired_at"])),
        )

    @reached
    async def cached(
        self, user: str | None, kind: str, cache_key: str, fresh_s: float
    ) -> Task | None:
        ids = await self._r.zrevrange(f"{self._p}:cache:{cache_key}:{user or ''}", 0, LOOK_AT - 1)
        if not ids:
            return None
        seconds, micros = await self._r.time()  # finish times are Redis' clock
        since = seconds + micros / 1e6 - fresh_s
        async with self._r.pipeline(transaction=False) as pipe:
            for task_id in ids:
                pipe.hgetall(f"{self._p}:task:{task_id}")
            records = await pipe.execute()
        fresh = [
            data
            for data in records
            if data
            and data.get("status") == TaskStatus.SUCCEEDED
            and data.get("kind") == kind
            and data.get("user") == user
            and float(data.get("finished_at") or 0) > since
        ]
        if not fresh:
            return None
        return task_from(max(fresh, key=lambda data: float(data["finished_at"])))
