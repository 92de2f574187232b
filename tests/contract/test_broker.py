"""The Broker contract, run against every backend."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from genqueue.backends import open_broker
from genqueue.contracts import Broker, Delivery, Message
from genqueue.settings import Settings


async def take(
    deliveries: AsyncIterator[Delivery], n: int, timeout_s: float = 5.0
) -> list[Delivery]:
    async with asyncio.timeout(timeout_s):
        return [await anext(deliveries) for _ in range(n)]


async def test_publish_then_consume_in_priority_then_age_order(broker: Broker) -> None:
    for task_id, priority in (("a", 0), ("b", 0), ("c", 5), ("d", -1)):
        await broker.publish([Message("q", task_id, priority=priority)])
    deliveries = broker.consume(["q"], prefetch=10)
    got = await take(deliveries, 4)
    assert [d.task_id for d in got] == ["c", "a", "b", "d"]
    for d in got:
        await d.ack()
    await deliveries.aclose()
    assert await broker.depth("q") == 0


async def test_prefetch_bounds_unacknowledged_deliveries(broker: Broker) -> None:
    for i in range(5):
        await broker.publish([Message("q", f"t{i}")])
    deliveries = broker.consume(["q"], prefetch=2)
    first = await take(deliveries, 2)
    pending = asyncio.ensure_future(anext(deliveries))
    done, _ = await asyncio.wait([pending], timeout=0.3)
    assert not done, "a third delivery arrived while two were unacknowledged"
    await first[0].ack()
    third = await asyncio.wait_for(pending, 5)
    assert third.task_id == "t2"
    await deliveries.aclose()


async def test_nack_with_delay_redelivers_later(broker: Broker) -> None:
    await broker.publish([Message("q", "x")])
    deliveries = broker.consume(["q"], prefetch=1)
    [first] = await take(deliveries, 1)
    started = time.monotonic()
    await first.nack(0.4)
    [again] = await take(deliveries, 1)
    assert again.task_id == "x"
    assert time.monotonic() - started >= 0.35
    await again.ack()
    await deliveries.aclose()


async def test_delayed_publish_is_not_delivered_early(broker: Broker) -> None:
    await broker.publish([Message("q", "later", delay_s=0.5)])
    await broker.publish([Message("q", "now")])
    deliveries = broker.consume(["q"], prefetch=5)
    started = time.monotonic()
    [a, b] = await take(deliveries, 2)
    assert [a.task_id, b.task_id] == ["now", "later"]
    assert time.monotonic() - started >= 0.45
    await deliveries.aclose()


async def test_unacked_delivery_of_a_closed_broker_is_delivered_again(
    broker: Broker, broker_url: str, settings: Settings
) -> None:
    await broker.publish([Message("q", "orphan")])
    dying = await open_broker(broker_url, settings)  # another process, which then dies
    first_consumer = dying.consume(["q"], prefetch=1)
    [held] = await take(first_consumer, 1)
    await first_consumer.aclose()
    await dying.aclose()
    # Never acked: another consumer gets it once the dead one's hold lapses.
    second = broker.consume(["q"], prefetch=1)
    [again] = await take(second, 1, timeout_s=15)
    assert again.task_id == held.task_id
    await again.ack()
    await second.aclose()
    assert await broker.depth("q") == 0


async def test_consumers_of_different_queues_do_not_mix(broker: Broker) -> None:
    await broker.publish([Message("a", "for-a")])
    await broker.publish([Message("b", "for-b")])
    deliveries = broker.consume(["b"], prefetch=5)
    [got] = await take(deliveries, 1)
    assert got.task_id == "for-b"
    assert await broker.depth("a") == 1
    await deliveries.aclose()
