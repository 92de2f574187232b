"""The Redis store's API keys (``{p}:key:{id}``, ``{p}:keyhash:{hash}``, ``{p}:keys``; see the
package docstring). Create and revoke are Lua scripts; reads are plain commands."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from genqueue.backends.redis import scripts
from genqueue.backends.redis.connection import reached
from genqueue.keys import KeyNotFoundError
from genqueue.models import ApiKey, Role, from_epoch


def _count(value: str | None) -> int | None:
    return int(value) if value else None


def _key(fields: dict[str, str]) -> ApiKey:
    revoked = fields.get("revoked_at")
    return ApiKey(
        id=fields["id"],
        user=fields["user"],
        role=Role(fields["role"]),
        label=fields.get("label") or None,
        created_at=from_epoch(float(fields["created_at"])),
        revoked_at=from_epoch(float(revoked)) if revoked else None,
        tasks_per_minute=_count(fields.get("tasks_per_minute")),
        in_flight=_count(fields.get("in_flight")),
    )


class RedisKeys:
    """``create_key``, ``key_by_hash``, ``list_keys``, ``revoke_key`` of the store."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._r: Any = redis  # typed Any as in RedisStore
        self._p = prefix
        self._s = scripts.load(redis, ["create_key", "revoke_key"], prelude=())

    @reached
    async def create_key(self, key: ApiKey, key_hash: str) -> None:
        created = await self._s["create_key"](
            args=[
                self._p,
                key.id,
                key_hash,
                key.user,
                key.role.value,
                key.label or "",
                repr(key.created_at.timestamp()),
                "" if key.tasks_per_minute is None else str(key.tasks_per_minute),
                "" if key.in_flight is None else str(key.in_flight),
            ]
        )
        if not created:
            raise ValueError(f"an API key with id {key.id!r} or the same hash exists")

    @reached
    async def key_by_hash(self, key_hash: str) -> ApiKey | None:
        key_id = await self._r.get(f"{self._p}:keyhash:{key_hash}")
        if key_id is None:
            return None
        fields = await self._r.hgetall(f"{self._p}:key:{key_id}")
        return _key(fields) if fields else None

    @reached
    async def list_keys(self) -> list[ApiKey]:
        ids = await self._r.zrevrange(f"{self._p}:keys", 0, -1)
        async with self._r.pipeline(transaction=False) as pipe:
            for key_id in ids:
                pipe.hgetall(f"{self._p}:key:{key_id}")
            records = await pipe.execute()
        found = [_key(fields) for fields in records if fields]
        return sorted(found, key=lambda k: (k.created_at, k.id), reverse=True)

    @reached
    async def revoke_key(self, key_id: str) -> ApiKey:
        flat = await self._s["revoke_key"](args=[self._p, key_id])
        if not flat:
            raise KeyNotFoundError(f"no API key {key_id!r}")
        return _key(scripts.pairs(flat))
