"""Relay: what genqueue records, published to RabbitMQ queues in a replaced system's own shape,
so the consumers written for that system keep working (seeds 000 and 004).

An adapter gives the relay a function from an event to the messages it owes (a finished task
-> one result message) and, optionally, a periodic one (worker heartbeats). The relay follows
the process's event hub and publishes each message persistent, with publisher confirms, to a
durable queue (declared if missing, else used as it is, so a queue the old system declared
with other arguments is not a conflict).

One relay per cluster: each API process runs one, but only the holder of an exclusive queue
(``<lock>``) publishes; the others stand by and take over when its connection drops.

Resuming: after every published message, and every ``CURSOR_EVERY_S`` if events went by, the
id of the last event handled is kept in a durable one-message queue (``<lock>.cursor``). A
relay that takes over (an API restart, a RabbitMQ outage, another API process) resumes after
it from the store's event feed, so results of tasks that finished meanwhile are published
too. With no cursor yet it starts from the first event the store keeps, when the store keeps
every event since its start (a new deployment), else from now. Delivery is at least once: a
message published just before a crash, whose cursor was not written, is published again
(consumers dedupe by task id). An outage longer than the store keeps events (SQLite and
PostgreSQL 10 minutes, Redis ~100,000 events) loses the messages of the gap; it is logged,
and the results stay readable over HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiormq
import aiormq.abc
from pamqp import commands as spec

from genqueue.aio import stop_tasks
from genqueue.api.runtime import Runtime
from genqueue.backends.amqp.connection import BackoffConnection, connect
from genqueue.backends.amqp.layout import split_url
from genqueue.errors import BackendUnavailableError
from genqueue.events import EventFilter
from genqueue.models import Event, EventType, Task
from genqueue.retry import OUTAGE_BACKOFF
from genqueue.settings import Settings

log = logging.getLogger(__name__)

CURSOR_EVERY_S = 5.0
FROM_THE_START = "0"  # an event id before every other, in every store
LOCK_RETRY_S = 2.0
FINISHED_EVENTS = frozenset(
    {EventType.SUCCEEDED, EventType.FAILED, EventType.CANCELLED, EventType.EXPIRED}
)


@dataclass(frozen=True)
class Outbound:
    """One message to publish: its queue, its JSON body, and (heartbeats) how long it stays
    worth reading if nobody consumes it."""

    queue: str
    body: dict[str, Any]
    ttl_s: float | None = None


OnEvent = Callable[[Event], Awaitable[list[Outbound]]]
OnTick = Callable[[], Awaitable[list[Outbound]]]


def rabbitmq_url(settings: Settings) -> str | None:
    """The broker's URL for the relay's own connection when the broker is RabbitMQ; None
    otherwise (the relay stays off: there is no RabbitMQ consumer to feed)."""
    if not settings.broker.startswith(("amqp://", "amqps://")):
        return None
    return split_url(settings.broker)[0]


async def finished_task(runtime: Runtime, event: Event, kind: str) -> Task | None:
    """The task an event finished, if it is of ``kind`` (None for every other event)."""
    if event.kind != kind or event.type not in FINISHED_EVENTS:
        return None
    try:
        return await runtime.store.get(event.task_id)
    except Exception as exc:  # purged meanwhile, or the store is down: the event is skipped
        log.warning("relay: task %s not readable (%s); its message is skipped", event.task_id, exc)
        return None


class Relay:
    """Publishes what ``on_event`` and ``on_tick`` return to RabbitMQ; see the module doc."""

    def __init__(
        self,
        runtime: Runtime,
        url: str,
        lock: str,
        queues: Sequence[str],
        on_event: OnEvent,
        on_tick: OnTick | None = None,
        tick_s: float = 30.0,
    ) -> None:
        self._runtime = runtime
        self._url = url
        self.lock = lock
        self.cursor_queue = f"{lock}.cursor"
        self._queues = list(queues)
        self._on_event = on_event
        self._on_tick = on_tick
        self._tick_s = tick_s
        amqp = runtime.settings.amqp
        self._timeout_s = amqp.timeout_s
        self._max_pause_s = amqp.reconnect_max_s
        self._conn: BackoffConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self.active = False  # holds the lock and publishes

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"genqueue-relay-{self.lock}")

    async def aclose(self) -> None:
        if self._task is not None:
            await stop_tasks(self._task)
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()

    async def inspect(self, queues: Sequence[str]) -> dict[str, tuple[int, int]]:
        """(messages ready, consumers) of each queue that exists; empty when not connected."""
        found: dict[str, tuple[int, int]] = {}
        if self._conn is None:
            return found
        try:
            async with asyncio.timeout(self._timeout_s):
                amqp = self._conn.amqp()
                for queue in queues:
                    channel = await amqp.channel()
                    try:
                        ok = await channel.queue_declare(queue, passive=True)
                    except aiormq.exceptions.ChannelNotFoundEntity:
                        continue
                    found[queue] = (int(ok.message_count or 0), int(ok.consumer_count or 0))
                    await channel.close()
        except (aiormq.exceptions.AMQPError, BackendUnavailableError, OSError, TimeoutError):
            return {}
        return found

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                if self._conn is None:
                    self._conn = await connect(self._url, self._timeout_s, self._max_pause_s)
                await self._session(self._conn)
            except Exception as exc:
                if failures == 0 or self.active:
                    log.warning("relay %s: %r; starting again", self.lock, exc)
            self.active = False
            failures += 1
            await asyncio.sleep(OUTAGE_BACKOFF.delay_s(min(failures, 64)))

    async def _session(self, conn: BackoffConnection) -> None:
        """Take the lock, declare the queues, read the cursor, then publish until a failure."""
        amqp = await conn.amqp_ready(None)
        channel = await self._lock_channel(amqp)
        try:
            for queue in self._queues:
                channel = await self._ensure_queue(amqp, channel, queue, {})
            channel = await self._ensure_queue(
                amqp, channel, self.cursor_queue, {"x-max-length": 1}
            )
            # No cursor yet (a first start, or one that stopped before any event): from the
            # first event the store keeps, if it keeps all since its start, else from now.
            after = await self._read_cursor(channel) or FROM_THE_START
            self.active = True
            log.info("relay %s: publishing, after event %s", self.lock, after)
            await self._publish_loop(channel, after)
        finally:
            with contextlib.suppress(Exception):
                await channel.close()

    async def _lock_channel(
        self, amqp: aiormq.abc.AbstractConnection
    ) -> aiormq.abc.AbstractChannel:
        """A confirm channel, once this connection holds the exclusive lock queue."""
        standing_by = False
        while True:
            channel = await amqp.channel(publisher_confirms=True)
            try:
                async with asyncio.timeout(self._timeout_s):
                    await channel.queue_declare(self.lock, exclusive=True)
                return channel
            except aiormq.exceptions.ChannelLockedResource:
                if not standing_by:
                    log.info("relay %s: another process publishes; standing by", self.lock)
                    standing_by = True
            await asyncio.sleep(LOCK_RETRY_S)

    async def _ensure_queue(
        self,
        amqp: aiormq.abc.AbstractConnection,
        channel: aiormq.abc.AbstractChannel,
        queue: str,
        arguments: dict[str, Any],
    ) -> aiormq.abc.AbstractChannel:
        """Use ``queue`` as it exists, or declare it durable; returns a live channel (a failed
        passive declare closes the one it was made on)."""
        async with asyncio.timeout(self._timeout_s):
            try:
                await channel.queue_declare(queue, passive=True)
                return channel
            except aiormq.exceptions.ChannelNotFoundEntity:
                channel = await amqp.channel(publisher_confirms=True)
                await channel.queue_declare(queue, durable=True, arguments=arguments)
                return channel

    async def _read_cursor(self, channel: aiormq.abc.AbstractChannel) -> str | None:
        async with asyncio.timeout(self._timeout_s):
            message = await channel.basic_get(self.cursor_queue, no_ack=False)
            if not isinstance(message.delivery, spec.Basic.GetOk):
                return None
            tag = message.delivery.delivery_tag
            assert tag is not None  # a GetOk always carries one
            await channel.basic_reject(tag, requeue=True)
        return message.body.decode() or None

    async def _publish_loop(self, channel: aiormq.abc.AbstractChannel, after: str | None) -> None:
        loop = asyncio.get_running_loop()
        seen = written = after
        next_tick = loop.time()
        next_cursor = loop.time() + CURSOR_EVERY_S
        while True:  # one subscription per round; a lagging one is replaced from ``seen``
            async with self._runtime.hub.subscribe(EventFilter(), after=seen) as sub:
                if sub.lagged and seen == FROM_THE_START:
                    log.info("relay %s: the store's events start later; from now", self.lock)
                    sub.lagged = False
                elif sub.lagged:
                    log.warning(
                        "relay %s: the store no longer keeps event %s; going on from now (the"
                        " messages of tasks finished in the gap are not published)",
                        self.lock,
                        seen,
                    )
                    sub.lagged = False
                while True:
                    now = loop.time()
                    if self._on_tick is not None and now >= next_tick:
                        await self._send(channel, await self._on_tick())
                        next_tick = now + self._tick_s
                    if seen != written and now >= next_cursor:
                        assert seen is not None
                        await self._write_cursor(channel, seen)
                        written, next_cursor = seen, now + CURSOR_EVERY_S
                    wake = min(next_cursor, next_tick if self._on_tick else next_cursor)
                    event = await sub.next(max(0.05, wake - loop.time()))
                    if event is None:
                        if sub.lagged:
                            break  # resubscribe after ``seen``: the store replays the rest
                        continue
                    outbound = await self._on_event(event)
                    seen = event.id
                    if outbound:
                        await self._send(channel, outbound)
                        await self._write_cursor(channel, seen)
                        written = seen

    async def _write_cursor(self, channel: aiormq.abc.AbstractChannel, event_id: str) -> None:
        await self._publish(channel, self.cursor_queue, event_id.encode(), None)

    async def _send(self, channel: aiormq.abc.AbstractChannel, outbound: list[Outbound]) -> None:
        for out in outbound:
            body = json.dumps(out.body, ensure_ascii=False).encode()
            await self._publish(channel, out.queue, body, out.ttl_s)

    async def _publish(
        self, channel: aiormq.abc.AbstractChannel, queue: str, body: bytes, ttl_s: float | None
    ) -> None:
        properties = spec.Basic.Properties(
            delivery_mode=2,
            content_type="application/json",
            expiration=None if ttl_s is None else str(max(1, round(ttl_s * 1000))),
        )
        async with asyncio.timeout(self._timeout_s):
            confirm = await channel.basic_publish(
                body, routing_key=queue, properties=properties, mandatory=True
            )
        if not isinstance(confirm, spec.Basic.Ack):
            raise BackendUnavailableError(f"RabbitMQ did not confirm a message to {queue!r}")
