"""The Redis store's webhook deliveries: the "webhook" methods of ``RedisStore``
(``contracts.Store``), each change one Lua script (``webhook_*.lua``).

Keys (beside the package docstring's):
    {p}:webhook:{id}               hash: a delivery (id = its webhook-id; log: JSON list of
                                   attempts; next_at only while pending)
    {p}:webhooks:due               zset: pending delivery ids by when a sender may take them
    {p}:webhooks:task:{task id}    zset: a task's delivery ids by creation time
    {p}:webhooks:batch:{batch id}  zset: a batch's (batch.finished and its tasks' events)
    {p}:webhooks:made              zset: every delivery id by creation time (retention)
    {p}:webhooks:cursor            string: the last event turned into deliveries
Targets live in the task and batch hashes, field ``webhook`` (JSON), written by submit.lua.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis

from genqueue.backends.redis import scripts
from genqueue.backends.redis.connection import UNREACHABLE, reached
from genqueue.errors import BackendUnavailableError
from genqueue.models import from_epoch
from genqueue.webhooks.records import DeliveryState, WebhookAttempt, WebhookDelivery

SCRIPTS = ["webhook_add", "webhook_take", "webhook_record", "webhook_purge"]


def _delivery(data: dict[str, str]) -> WebhookDelivery:
    next_at = data.get("next_at")
    return WebhookDelivery(
        id=data["id"],
        task_id=data.get("task_id") or None,
        batch_id=data.get("batch_id") or None,
        url=data["url"],
        event=data["event"],
        body=data["body"],
        state=DeliveryState(data["state"]),
        attempts=int(data["attempts"]),
        next_attempt_at=from_epoch(float(next_at)) if next_at else None,
        created_at=from_epoch(float(data["created_at"])),
        log=[WebhookAttempt.model_validate(item) for item in json.loads(data["log"])],
    )


class RedisWebhooks:
    """The webhook methods of ``RedisStore``, and its purge of deliveries."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._r: Any = redis  # typed Any as in RedisStore
        self._p = prefix
        self._s = scripts.load(redis, SCRIPTS, prelude=("webhooks_common",))

    async def _run(self, name: str, *args: Any) -> Any:
        try:
            return await self._s[name](args=[self._p, *args])
        except UNREACHABLE as exc:
            raise BackendUnavailableError(f"Redis: {exc}") from exc

    async def add(self, deliveries: Sequence[WebhookDelivery]) -> list[str]:
        if not deliveries:
            return []
        items = [
            {
                "id": d.id,
                "task_id": d.task_id or "",
                "batch_id": d.batch_id or "",
                "url": d.url,
                "event": d.event,
                "body": d.body,
                "created_at": repr(d.created_at.timestamp()),
            }
            for d in deliveries
        ]
        created: list[str] = await self._run("webhook_add", json.dumps(items))
        return created

    async def take(self, limit: int, hold_s: float) -> list[WebhookDelivery]:
        if limit <= 0:
            return []
        rows = await self._run("webhook_take", limit, float(hold_s))
        return [_delivery(scripts.pairs(flat)) for flat in rows]

    async def record_attempt(
        self, delivery_id: str, attempt: WebhookAttempt, state: DeliveryState, retry_in_s: float
    ) -> bool:
        done = await self._run(
            "webhook_record",
            delivery_id,
            attempt.model_dump_json(),
            state.value,
            float(retry_in_s),
        )
        return bool(done)

    @reached
    async def deliveries(
        self, *, task_id: str | None = None, batch_id: str | None = None
    ) -> list[WebhookDelivery]:
        if task_id is not None:
            index = f"{self._p}:webhooks:task:{task_id}"
        elif batch_id is not None:
            index = f"{self._p}:webhooks:batch:{batch_id}"
        else:
            return []
        ids = await self._r.zrange(index, 0, -1)
        async with self._r.pipeline(transaction=False) as pipe:
            for delivery_id in ids:
                pipe.hgetall(f"{self._p}:webhook:{delivery_id}")
            records = await pipe.execute()
        return [_delivery(data) for data in records if data]

    @reached
    async def pending(self) -> int:
        return int(await self._r.zcard(f"{self._p}:webhooks:due"))

    @reached
    async def cursor(self) -> str | None:
        value = await self._r.get(f"{self._p}:webhooks:cursor")
        return None if value is None else str(value)

    @reached
    async def save_cursor(self, event_id: str) -> None:
        await self._r.set(f"{self._p}:webhooks:cursor", event_id)

    async def purge(self, older_than_s: float) -> None:
        """Deliveries made before the cutoff whose task (or batch) the purge took."""
        await self._run("webhook_purge", float(older_than_s))
