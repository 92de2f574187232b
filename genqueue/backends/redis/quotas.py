"""The Redis store's submit quotas (policy in ``genqueue/api/quotas.py``).

``{p}:quota:{key id}`` (hash: window, used) is a key's count in its current window, checked
and counted by ``spend_quota.lua`` in one step on Redis' clock. ``{p}:unfinished`` (hash:
user -> queued or running tasks) is kept by every status change (``move`` in common.lua) and
``{p}:counts:{queue}`` (status -> count) by the same, so both counts are one HGET.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from genqueue.backends.redis import scripts
from genqueue.backends.redis.connection import reached
from genqueue.contracts import QuotaWindow


class RedisQuotas:
    """``Store.quotas``: ``spend``, ``count_unfinished``, ``count_queued``."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._r: Any = redis  # typed Any as in RedisStore
        self._p = prefix
        self._s = scripts.load(redis, ["spend_quota"], prelude=())

    @reached
    async def spend(self, key_id: str, tasks: int, per_window: int, window_s: float) -> QuotaWindow:
        admitted, used, resets_in_s = await self._s["spend_quota"](
            args=[self._p, key_id, tasks, per_window, repr(float(window_s))]
        )
        return QuotaWindow(bool(admitted), int(used), float(resets_in_s))

    @reached
    async def count_unfinished(self, user: str, upto: int) -> int:
        count = await self._r.hget(f"{self._p}:unfinished", user)
        return max(0, min(int(count or 0), upto))

    @reached
    async def count_queued(self, queue: str, upto: int) -> int:
        count = await self._r.hget(f"{self._p}:counts:{queue}", "queued")
        return max(0, min(int(count or 0), upto))
