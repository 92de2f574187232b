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
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import Any, Self

from redis.asyncio import Redis

from genqueue.aio import stop_tasks
from genqueue.backends.group import GroupCall
from genqueue.backends.pull import FALLBACK_POLL_S, Bell, Chime, Fetched, PullDelivery, Puller
from genqueue.backends.redis import scripts
from genqueue.backends.redis.connection import UNREACHABLE, connect, reached
from genqueue.contracts import BrokerStatus, Message, QueueStatus
from genqueue.errors import BackendUnavailableError

SCRIPTS = ["publish", "fetch", "settle", "touch", "ack"]


class RedisBroker:
    """The Broker contract on Redis. See ``genqueue.contracts.Broker``."""

    def __init__(self, redis: Redis, prefix: str, visibility_s: float) -> None:
        self._r: Any = redis  # see RedisStore: replies are str at run time
        self._p = prefix
        self.visibility_s = visibility_s
        self._s = scripts.load(redis, SCRIPTS, prelude=("broker_common",))
        self._chime = Chime()
        self._listener: asyncio.Task[None] | None = None
        self._ack = GroupCall(self._send_acks)
        self._puller = Puller(self, visibility_s)

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
        await self._puller.aclose()
        if self._listener is not None:
            await stop_tasks(self._listener)
        await self._r.aclose()

    async def _run(self, name: str, *args: Any) -> Any:
        try:
            return await self._s[name](args=[self._p, *args])
        except UNREACHABLE as exc:
            raise BackendUnavailableError(f"Redis: {exc}") from exc

    @reached
    async def ping(self) -> None:
        await self._r.ping()

    async def publish(self, messages: Sequence[Message]) -> None:
        if not messages:
            return
        body = [
            {"queue": m.queue, "task_id": m.task_id, "priority": m.priority, "delay_s": m.delay_s}
            for m in messages
        ]
        await self._run("publish", json.dumps(body))

    @reached
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
        except UNREACHABLE as exc:
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

    def consume(self, queues: Sequence[str], prefetch: int) -> AsyncGenerator[PullDelivery, None]:
        return self._puller.deliveries(queues, prefetch)

    @contextlib.asynccontextmanager
    async def bell(self) -> AsyncIterator[Bell]:
        self._listen()
        async with self._chime.bell() as bell:
            yield bell

    async def fetch(
        self, queues: Sequence[str], n: int, receipt: str, visibility_s: float
    ) -> tuple[list[Fetched], float]:
        rows, next_due = await self._run("fetch", receipt, visibility_s, n, *queues)
        due = float(next_due)
        fetched = [Fetched(m_id, task_id, queue, int(p)) for m_id, queue, task_id, p in rows]
        return fetched, FALLBACK_POLL_S if due < 0 else due

    async def settle(self, delivery: PullDelivery, delay_s: float | None) -> None:
        if delay_s is None:
            await self._ack(delivery.key, delivery.receipt)
        else:
            await self._run("settle", delivery.key, delivery.receipt, "nack", delay_s)

    async def touch(self, held: Sequence[PullDelivery], visibility_s: float) -> None:
        await self._run("touch", visibility_s, *(x for d in held for x in (d.key, d.receipt)))

    async def _send_acks(self, calls: list[Sequence[Any]]) -> list[Any]:
        """Acks made while one batch is on the wire go together in the next (group.py)."""
        await self._run("ack", *(x for call in calls for x in call))
        return [None] * len(calls)

    def _listen(self) -> None:
        """Keep one subscription to the wake channel (a connection of its own), made anew
        after a failure; every (re)subscription wakes the consumers, since anything may have
        been published while it was down."""
        if self._listener is not None:
            return
        channel = f"{self._p}:wake"

        async def relay() -> None:
            pubsub: Any = None
            try:
                while True:
                    try:
                        if pubsub is None:
                            pubsub = self._r.pubsub(ignore_subscribe_messages=True)
                            await pubsub.subscribe(channel)
                            self._chime.ring()
                        if await pubsub.get_message(timeout=FALLBACK_POLL_S) is not None:
                            self._chime.ring()
                    except UNREACHABLE:
                        if pubsub is not None:
                            with contextlib.suppress(Exception):
                                await pubsub.aclose()
                            pubsub = None
                        await asyncio.sleep(FALLBACK_POLL_S)
            finally:
                if pubsub is not None:
                    await pubsub.aclose()

        self._listener = asyncio.create_task(relay(), name="genqueue-redis-wake")
