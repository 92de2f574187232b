"""Every pull broker through an outage of its server: the consume iterator ends with
``BackendUnavailableError`` (it does not hang), and the same broker object consumes, publishes
and settles again once the server is back, with nothing lost or handed out twice. The worker
reopens its consumer this way (``worker/worker.py``); RabbitMQ's consumer reconnects itself
(``tests/system/test_amqp_faults.py``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from genqueue.backends import open_broker
from genqueue.contracts import Broker, Message
from genqueue.errors import BackendUnavailableError
from genqueue.settings import Settings
from tests.contract.test_broker import take
from tests.helpers import wait_for
from tests.servers import PrivatePostgres, PrivateRedis, SqliteLock

pytestmark = pytest.mark.system


@dataclass
class Outage:
    url: str
    down: Callable[[], None]
    up: Callable[[], None]


def sqlite_outage(tmp_path: Path) -> Iterator[Outage]:
    """Another process holds the file's write lock until told to let go."""
    path = tmp_path / "genqueue.db"
    lock = SqliteLock(path)
    # A short busy timeout: the outage is the lock held past it, however long that is.
    yield Outage(f"sqlite:///{path}?busy_timeout_s=3", lock.take, lock.release)
    lock.close()


@pytest.fixture(params=["sqlite", "redis", "postgres"])
def outage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Outage]:
    if request.param == "sqlite":
        yield from sqlite_outage(tmp_path)
    elif request.param == "redis":
        with PrivateRedis(tmp_path / "redis") as redis:
            yield Outage(f"{redis.url}?prefix=gq", redis.kill, redis.start)
    else:
        with PrivatePostgres(tmp_path / "pg") as pg:
            yield Outage(f"{pg.url}?schema=gq", lambda: pg.stop("immediate"), pg.start)


async def published(broker: Broker, message: Message) -> bool:
    try:
        await broker.publish([message])
    except BackendUnavailableError:
        return False
    return True


async def test_consume_ends_in_an_outage_and_works_again_after_it(
    outage: Outage, settings: Settings
) -> None:
    broker = await open_broker(outage.url, settings)
    try:
        await broker.publish([Message("q", "held"), Message("q", "waiting")])
        first = broker.consume(["q"], prefetch=1)
        [held] = await take(first, 1)
        outage.down()
        try:
            # At the prefetch bound it waits for a settlement; the ack fails, the fetch fails.
            with pytest.raises(BackendUnavailableError):
                await held.ack()
            with pytest.raises(BackendUnavailableError):
                async with asyncio.timeout(30):
                    await anext(first)
            await first.aclose()
        finally:
            outage.up()
        await wait_for(lambda: published(broker, Message("q", "after")), 30, 0.2, "a publish")
        second = broker.consume(["q"], prefetch=5)
        got = await take(second, 3, timeout_s=30)
        # "held" was never acknowledged (its ack met the outage), so it comes again, once.
        assert sorted(d.task_id for d in got) == ["after", "held", "waiting"]
        for delivery in got:
            await delivery.ack()
        await second.aclose()
        assert await broker.depth("q") == 0
    finally:
        await broker.aclose()
