"""AmqpBroker: the Broker contract on RabbitMQ (layout and choices in the package docstring)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Self, cast
from urllib.parse import urlsplit

import aiormq
import aiormq.abc
from pamqp import commands as spec

from genqueue.backends.amqp.connection import (
    FIRST_RETRY_S,
    TRANSIENT,
    BackoffConnection,
    connect,
)
from genqueue.backends.amqp.layout import (
    WAIT_EXPIRES_MARGIN_MS,
    Layout,
    delay_ms,
    precondition_error,
    prefetch_shares,
    resolve_queue_type,
    split_url,
)
from genqueue.contracts import BrokerStatus, Message, QueueStatus
from genqueue.errors import BackendUnavailableError, ConfigError
from genqueue.settings import AmqpSettings

log = logging.getLogger(__name__)
Channel = aiormq.Channel
Inbox = asyncio.Queue["AmqpDelivery | BaseException | None"]


@dataclass(frozen=True)
class _Out:
    """One message to send: genqueue queue, task id, AMQP priority, delay."""

    queue: str
    task_id: str
    priority: int | None
    delay_s: float


@dataclass
class AmqpDelivery:
    """One delivered message, tied to the channel it came on: once that channel is gone the
    server delivers the message again, so settling it here becomes a harmless no-op."""

    broker: AmqpBroker
    channel: Channel
    delivery_tag: int
    task_id: str
    queue: str
    priority: int | None
    _done: bool = field(default=False, repr=False)

    async def ack(self) -> None:
        if self._done:
            return
        self._done = True
        with contextlib.suppress(*TRANSIENT):
            await self.channel.basic_ack(self.delivery_tag)

    async def nack(self, delay_s: float = 0.0) -> None:
        """Requeue at once in place, or (with a delay, or when the channel is gone and a
        redelivered copy may have been dropped as a duplicate meanwhile) publish a confirmed
        copy first and then acknowledge this one, so the message exists at every moment."""
        if self._done:
            return
        self._done = True
        if delay_s <= 0 and not self.channel.is_closed:
            try:
                await self.channel.basic_nack(self.delivery_tag, requeue=True)
                return
            except TRANSIENT:
                pass
        try:
            await self.broker._publish([_Out(self.queue, self.task_id, self.priority, delay_s)])
        except BackendUnavailableError:
            if self.channel.is_closed:
                raise
            # Could not make the delayed copy: hand this one back now; the worker's claim
            # finds the task not due yet and gives it back with the remaining delay.
            with contextlib.suppress(*TRANSIENT):
                await self.channel.basic_nack(self.delivery_tag, requeue=True)
            return
        with contextlib.suppress(*TRANSIENT):
            await self.channel.basic_ack(self.delivery_tag)


class AmqpBroker:
    """The Broker contract on RabbitMQ. See ``genqueue.contracts.Broker``."""

    def __init__(
        self, connection: BackoffConnection, layout: Layout, settings: AmqpSettings, url: str
    ) -> None:
        self._conn = connection
        self.layout = layout
        self._timeout_s = settings.timeout_s
        self._max_pause_s = settings.reconnect_max_s
        self._where = urlsplit(url).hostname or "localhost", urlsplit(url).port or 5672
        self._declared: dict[str, float] = {}  # RabbitMQ queue -> when we last declared it
        self._declare_lock = asyncio.Lock()
        # Opened lazily: "publish" (confirms on), "admin" (declarations) and "probe" (passive
        # declares, which a missing queue closes: kept apart so that cannot fail a publish).
        self._channels: dict[str, Channel] = {}
        self._channel_lock = asyncio.Lock()
        self._consumers: dict[asyncio.Task[None], Inbox] = {}

    @classmethod
    async def connect(cls, url: str, settings: AmqpSettings | None = None) -> Self:
        settings = settings or AmqpSettings()
        plain, prefix = split_url(url)
        connection = await connect(plain, settings.timeout_s, settings.reconnect_max_s)
        queue_type = resolve_queue_type(settings.queue_type, connection.server_version)
        layout = Layout(prefix, queue_type, settings.max_priority, dict(settings.queue_names))
        broker = cls(connection, layout, settings, plain)
        try:
            # Queues named in settings usually exist already (a seed system's): check them
            # now, so a mismatch stops the API or worker at start with a ConfigError.
            for queue in settings.queue_names:
                await broker._declare(layout.main(queue), layout.main_arguments(), float("inf"))
        except BaseException:
            await broker.aclose()
            raise
        return broker

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for task, inbox in list(self._consumers.items()):
            task.cancel()
            inbox.put_nowait(None)  # ends the consumer's iteration
        await asyncio.gather(*self._consumers, return_exceptions=True)
        await self._conn.close()

    # -- channels and declarations ---------------------------------------------------------

    async def _channel(self, role: str, *, wait: bool = True) -> Channel:
        """A long-lived channel by role, reopened after it or the connection died;
        ``wait=False`` fails at once while reconnecting instead of waiting."""
        channel = self._channels.get(role)
        if channel is not None and not channel.is_closed:
            return channel
        async with self._channel_lock:
            channel = self._channels.get(role)
            if channel is None or channel.is_closed:
                amqp = await self._conn.amqp_ready(None) if wait else self._conn.amqp()
                channel = cast(Channel, await amqp.channel(publisher_confirms=role == "publish"))
                self._channels[role] = channel
            return channel

    async def _declare(self, name: str, arguments: dict[str, Any], fresh_s: float) -> None:
        """Declare a durable queue unless we did so within ``fresh_s`` (inf: once)."""
        declared = self._declared.get(name)
        if declared is not None and time.monotonic() - declared < fresh_s:
            return
        async with self._declare_lock:
            declared = self._declared.get(name)
            if declared is not None and time.monotonic() - declared < fresh_s:
                return
            channel = await self._channel("admin")
            try:
                await channel.queue_declare(name, durable=True, arguments=arguments)
            except aiormq.exceptions.ChannelPreconditionFailed as exc:
                raise precondition_error(name, _reply_text(exc)) from exc
            except aiormq.exceptions.ChannelAccessRefused as exc:
                raise ConfigError(f"RabbitMQ refused to declare {name!r}: {exc}") from exc
            self._declared[name] = time.monotonic()

    async def _route(self, out: _Out) -> str:
        """The RabbitMQ queue to publish ``out`` to, declared (with its target) if need be."""
        main = self.layout.main(out.queue)
        await self._declare(main, self.layout.main_arguments(), float("inf"))
        if out.delay_s <= 0:
            return main
        ttl_ms = delay_ms(out.delay_s)
        wait = self.layout.wait(out.queue, ttl_ms)
        fresh_s = WAIT_EXPIRES_MARGIN_MS / 2000
        await self._declare(wait, self.layout.wait_arguments(out.queue, ttl_ms), fresh_s)
        return wait

    # -- publishing --------------------------------------------------------------------------

    async def publish(self, messages: Sequence[Message]) -> None:
        """All at once, each persistent and mandatory; returns when every confirm is in."""
        outs = [
            _Out(m.queue, m.task_id, self.layout.message_priority(m.priority), m.delay_s)
            for m in messages
        ]
        await self._publish(outs)

    async def _publish(self, outs: list[_Out]) -> None:
        if not outs:
            return
        try:
            async with asyncio.timeout(self._timeout_s):
                for _ in range(2):  # a second round if a queue was deleted behind our back
                    outs = await self._send(outs)
                    if not outs:
                        return
        except TimeoutError as exc:
            raise BackendUnavailableError(
                f"RabbitMQ: no publisher confirm within {self._timeout_s} s"
            ) from exc
        except TRANSIENT as exc:
            raise BackendUnavailableError(f"RabbitMQ: publish failed: {exc!r}") from exc
        raise BackendUnavailableError(
            f"RabbitMQ returned messages as unroutable: queues {sorted({o.queue for o in outs})}"
        )

    async def _send(self, outs: list[_Out]) -> list[_Out]:
        """Publish concurrently on the confirm channel; return those the server returned as
        unroutable (their queue vanished; it is declared again on the next round)."""
        routes = [await self._route(out) for out in outs]
        channel = await self._channel("publish")
        results = await asyncio.gather(
            *(
                channel.basic_publish(
                    out.task_id.encode(),
                    routing_key=route,
                    properties=spec.Basic.Properties(delivery_mode=2, priority=out.priority),
                    mandatory=True,
                    wait=False,
                )
                for out, route in zip(outs, routes, strict=True)
            ),
            return_exceptions=True,
        )
        returned: list[_Out] = []
        for out, route, result in zip(outs, routes, results, strict=True):
            if isinstance(result, aiormq.exceptions.PublishError):
                self._declared.pop(route, None)
                self._declared.pop(self.layout.main(out.queue), None)
                returned.append(out)
            elif isinstance(result, BaseException):
                raise result
        return returned

    # -- consuming ---------------------------------------------------------------------------

    async def consume(
        self, queues: Sequence[str], prefetch: int
    ) -> AsyncGenerator[AmqpDelivery, None]:
        """One channel for this consumer, kept (re)subscribed in the background. Closing the
        iterator closes the channel, and the server requeues whatever it still held."""
        inbox: Inbox = asyncio.Queue()
        task = asyncio.create_task(self._subscribe(list(queues), max(1, prefetch), inbox))
        self._consumers[task] = inbox
        try:
            while True:
                item = await inbox.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                if not item.channel.is_closed:  # else it comes again on the new channel
                    yield item
        finally:
            self._consumers.pop(task, None)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _subscribe(self, queues: list[str], prefetch: int, inbox: Inbox) -> None:
        """Keep a channel consuming ``queues``; after a loss, wait for the connection and
        subscribe again (the server has requeued what the dead channel held)."""
        pause = FIRST_RETRY_S
        while True:
            channel: Channel | None = None
            try:
                for queue in queues:
                    await self._declare(
                        self.layout.main(queue), self.layout.main_arguments(), float("inf")
                    )
                amqp = await self._conn.amqp_ready(None)
                channel = cast(Channel, await amqp.channel(publisher_confirms=False))
                await self._start(channel, queues, prefetch, inbox)
                pause = FIRST_RETRY_S
                await channel.closing
            except TRANSIENT as exc:
                log.warning("RabbitMQ consumer of %s lost (%r); resubscribing", queues, exc)
                for queue in queues:  # declare again: the server may have lost them
                    self._declared.pop(self.layout.main(queue), None)
            except Exception as exc:  # ConfigError above all: the consumer raises it
                inbox.put_nowait(exc)
                return
            finally:
                if channel is not None and not channel.is_closed:
                    with contextlib.suppress(*TRANSIENT):
                        await channel.close()
            await asyncio.sleep(pause)
            pause = min(pause * 2, self._max_pause_s)

    async def _start(
        self, channel: Channel, queues: list[str], prefetch: int, inbox: Inbox
    ) -> None:
        """Prefetch shared by all of this consumer's queues: one channel-wide (global) QoS
        for classic queues; quorum queues refuse global QoS, so there each queue's consumer
        gets a share of the prefetch instead."""
        shared = self.layout.queue_type == "classic" and len(queues) > 1
        if shared:
            await channel.basic_qos(prefetch_count=prefetch, global_=True)
        for queue, share in zip(queues, prefetch_shares(prefetch, len(queues)), strict=True):
            if not shared:
                await channel.basic_qos(prefetch_count=share, global_=False)
            await channel.basic_consume(
                self.layout.main(queue), self._deliver_to(inbox, channel, queue)
            )

    def _deliver_to(
        self, inbox: Inbox, channel: Channel, queue: str
    ) -> Callable[[aiormq.abc.DeliveredMessage], Coroutine[Any, Any, None]]:
        async def deliver(message: aiormq.abc.DeliveredMessage) -> None:
            tag = message.delivery_tag
            assert tag is not None  # consumed with manual ack
            task_id = message.body.decode(errors="replace")
            priority = message.header.properties.priority
            inbox.put_nowait(AmqpDelivery(self, channel, tag, task_id, queue, priority))

        return deliver

    # -- inspection --------------------------------------------------------------------------

    async def ping(self) -> None:
        try:
            async with asyncio.timeout(self._timeout_s):
                channel = await self._channel("probe", wait=False)
                await channel.exchange_declare("amq.direct", exchange_type="direct", passive=True)
        except (*TRANSIENT, TimeoutError) as exc:
            raise BackendUnavailableError(f"RabbitMQ: {exc!r}") from exc

    async def _inspect(self, queue: str) -> QueueStatus:
        """Ready messages and consumers of ``queue``'s main queue, by passive declare."""
        channel = await self._channel("probe", wait=False)
        try:
            ok = await channel.queue_declare(self.layout.main(queue), passive=True)
        except aiormq.exceptions.ChannelNotFoundEntity:
            return QueueStatus(queue, ready=0, unacked=None, consumers=0)
        return QueueStatus(queue, int(ok.message_count or 0), None, int(ok.consumer_count or 0))

    async def depth(self, queue: str) -> int:
        try:
            async with asyncio.timeout(self._timeout_s):
                return (await self._inspect(queue)).ready
        except (*TRANSIENT, TimeoutError) as exc:
            raise BackendUnavailableError(f"RabbitMQ: {exc!r}") from exc

    async def status(self, queues: Sequence[str]) -> BrokerStatus:
        host, port = self._where
        try:
            async with asyncio.timeout(self._timeout_s):
                found = [await self._inspect(queue) for queue in queues]
        except (*TRANSIENT, TimeoutError, BackendUnavailableError) as exc:
            detail = f"not connected to RabbitMQ at {host}:{port} ({exc}); reconnecting"
            return BrokerStatus("amqp", False, detail, [])
        detail = (
            f"{self._conn.server_product} {self._conn.server_version} at {host}:{port};"
            f" {self.layout.queue_type} queues, prefix {self.layout.prefix!r}"
        )
        return BrokerStatus("amqp", True, detail, found)


def _reply_text(exc: BaseException) -> str:
    return str(exc.args[0]) if exc.args else str(exc)
