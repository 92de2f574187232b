"""RedisBroker: the Broker contract on Redis sorted sets (layout in ``__init__``).

Delivery moves a message from its queue's ready set to ``unacked`` with a receipt and a
visibility deadline, in one script. A live consumer keeps pushing the deadline of what it holds
forward; a dead one stops, and ``fetch`` makes its messages ready again once the deadline
passes. Publishers announce new messages on a pub/sub channel so idle consumers wake at once;
they also poll slowly, so a missed announcement only delays.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from genqueue.backends.group import GroupCall
from genqueue.backends.redis import scripts
from genqueue.backends.redis.connection import connect
from genqueue.contracts import BrokerStatus, Message, QueueStatus
from genqueue.errors import BackendUnavailableError

SCRIPTS = ["publish", "fetch", "settle", "touch", "ack"]
FALLBACK_POLL_S = 0.5


@dataclass
class RedisDelivery:
    """One delivered message; ``ack``/``nack`` are fenced by the fetch's receipt."""

    broker: RedisBroker
    message_id: str
    receipt: str
    task_id: str
    queue: str
    _done: bool = field(default=False, repr=False)

    async def ack(self) -> None:
        if self._done:
            return
        self._done = True
        self.broker._held.pop(self.message_id, None)
        self.broker._settled.set()
        await self.broker._ack(self.message_id, self.receipt)

    async def nack(self, delay_s: float = 0.0) -> None:
        await self._settle("nack", delay_s)

    async def _settle(self, mode: str, delay_s: float) -> None:
        if self._done:
            return
        self._done = True
        self.broker._held.pop(self.message_id, None)
        self.broker._settled.set()
        await self.broker._run("settle", self.message_id, self.receipt, mode, delay_s)


class RedisBroker:
    """The Broker contract on Redis. See ``genqueue.contracts.Broker``."""

    def __init__(self, redis: Redis, prefix: str, visibility_s: float) -> None:
        self._r: Any = redis  # see RedisStore: replies are str at run time
        self._p = prefix
        self.visibility_s = visibility_s
        self._s = scripts.load(redis, SCRIPTS, prelude="broker_common")
        self._held: dict[str, RedisDelivery] = {}
        self._settled = asyncio.Event()
        self._wake = asyncio.Event()
        self._listener: asyncio.Task[None] | None = None
        self._ack = GroupCall(self._send_acks)

    @classmethod
    async def connect(cls, url: str, visibility_s: float = 10.0) -> Self:
        broker = cls(*connect(url), visibility_s)
        await broker.ping()
        return broker

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        await self._r.aclose()

    async def _run(self, name: str, *args: Any) -> Any:
        try:
            return await self._s[name](args=[self._p, *args])
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise BackendUnavailableError(f"Redis: {exc}") from exc

    async def ping(self) -> None:
        try:
            await self._r.ping()
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise BackendUnavailableError(f"Redis: {exc}") from exc

    async def publish(self, messages: Sequence[Message]) -> None:
        if not messages:
            return
        body = [
            {"queue": m.queue, "task_id": m.task_id, "priority": m.priority, "delay_s": m.delay_s}
            for m in messages
        ]
        await self._run("publish", json.dumps(body))

    async def depth(self, queue: str) -> int:
        return int(await self._r.zcard(f"{self._p}:q:{queue}"))

    async def status(self, queues: Sequence[str]) -> BrokerStatus:
        try:
            info = await self._r.info("server")
            async with self._r.pipeline(transaction=False) as pipe:
                for queue in queues:
                    pipe.zcard(f"{self._p}:q:{queue}")
                ready = await pipe.execute()
            # Unacknowledged messages are few (bounded by the workers' prefetch): look them up.
            held = await self._r.zrange(f"{self._p}:unacked", 0, -1)
            async with self._r.pipeline(transaction=False) as pipe:
                for message_id in held:
                    pipe.hget(f"{self._p}:msg:{message_id}", "queue")
                held_queues = await pipe.execute()
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            return BrokerStatus("redis", False, f"Redis: {exc}", [])
        return BrokerStatus(
            "redis",
            True,
            f"Redis {info.get('redis_version', '?')}",
            [
                QueueStatus(q, int(n), sum(1 for h in held_queues if h == q))
                for q, n in zip(queues, ready, strict=True)
            ],
        )

    async def consume(
        self, queues: Sequence[str], prefetch: int
    ) -> AsyncGenerator[RedisDelivery, None]:
        limit = max(1, prefetch)
        mine: set[str] = set()
        buffer: list[RedisDelivery] = []
        await self._listen()
        touch = asyncio.create_task(self._keep_visible(mine))
        try:
            while True:
                if buffer:
                    yield buffer.pop(0)
                    continue
                mine.intersection_update(self._held)
                if len(mine) >= limit:
                    self._settled.clear()
                    await self._settled.wait()
                    continue
                self._wake.clear()
                buffer, next_due = await self._fetch(queues, limit - len(mine))
                mine.update(d.message_id for d in buffer)
                if not buffer:
                    wait = FALLBACK_POLL_S if next_due < 0 else min(FALLBACK_POLL_S, next_due)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), wait)
        finally:
            touch.cancel()
            for delivery in buffer:  # fetched, never handed out: give them back now
                await delivery.nack()

    async def _fetch(self, queues: Sequence[str], n: int) -> tuple[list[RedisDelivery], float]:
        receipt = secrets.token_hex(8)
        rows, next_due = await self._run("fetch", receipt, self.visibility_s, n, *queues)
        fetched = [
            RedisDelivery(self, m_id, receipt, task_id, queue) for m_id, queue, task_id, _ in rows
        ]
        self._held.update((d.message_id, d) for d in fetched)
        return fetched, float(next_due)

    async def _send_acks(self, calls: list[Sequence[Any]]) -> list[Any]:
        """Acks made while one batch is on the wire go together in the next (group.py)."""
        await self._run("ack", *(x for call in calls for x in call))
        return [None] * len(calls)

    async def _listen(self) -> None:
        """Subscribe once to the wake channel (a connection of its own)."""
        if self._listener is not None:
            return
        pubsub = self._r.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(f"{self._p}:wake")

        async def relay() -> None:
            try:
                while True:
                    try:
                        message = await pubsub.get_message(timeout=FALLBACK_POLL_S)
                    except (RedisConnectionError, RedisTimeoutError, OSError):
                        await asyncio.sleep(FALLBACK_POLL_S)  # reconnects on the next call
                        continue
                    if message is not None:
                        self._wake.set()
            finally:
                await pubsub.aclose()

        self._listener = asyncio.create_task(relay(), name="genqueue-redis-wake")

    async def _keep_visible(self, mine: set[str]) -> None:
        while True:
            await asyncio.sleep(self.visibility_s / 3)
            held = [
                x for i in list(mine) if (d := self._held.get(i)) for x in (d.message_id, d.receipt)
            ]
            if held:
                with contextlib.suppress(BackendUnavailableError):
                    await self._run("touch", self.visibility_s, *held)
