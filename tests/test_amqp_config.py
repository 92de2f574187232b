"""RabbitMQ specifics on a real server: queue mismatches, exact queue names, status."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aio_pika
import pytest

from genqueue.backends.amqp import AmqpBroker
from genqueue.contracts import Message
from genqueue.errors import ConfigError
from genqueue.settings import AmqpSettings
from tests.helpers import backend_url, forget

pytestmark = pytest.mark.amqp


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    url = backend_url("amqp", tmp_path)
    yield url
    forget(url)


def prefix_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["prefix"][0]


async def declare(url: str, name: str, arguments: dict[str, Any]) -> None:
    connection = await aio_pika.connect(url.split("?")[0])
    async with connection:
        channel = await connection.channel()
        await channel.declare_queue(name, durable=True, arguments=arguments)


async def ready_in(url: str, name: str) -> int:
    connection = await aio_pika.connect(url.split("?")[0])
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(name, passive=True)
        assert queue.declaration_result.message_count is not None
        return queue.declaration_result.message_count


@pytest.fixture
async def classic(url: str) -> AsyncIterator[AmqpBroker]:
    broker = await AmqpBroker.connect(url, AmqpSettings(queue_type="classic"))
    yield broker
    await broker.aclose()


async def test_publish_to_a_queue_declared_with_another_type_names_the_argument(
    url: str, classic: AmqpBroker
) -> None:
    await declare(url, f"{prefix_of(url)}.jobs", {"x-queue-type": "quorum"})
    with pytest.raises(ConfigError) as raised:
        await classic.publish([Message("jobs", "t1")])
    message = str(raised.value)
    assert f"'{prefix_of(url)}.jobs'" in message and "'x-queue-type'" in message
    assert "received 'classic' but current is 'quorum'" in message
    assert "GENQUEUE_AMQP__QUEUE_TYPE" in message
    # The broker stays usable for the queues that do match.
    await classic.publish([Message("other", "t2")])
    assert await classic.depth("other") == 1


async def test_consuming_a_mismatched_queue_raises_config_error(
    url: str, classic: AmqpBroker
) -> None:
    await declare(url, f"{prefix_of(url)}.jobs", {"x-max-priority": 3})
    deliveries = classic.consume(["jobs"], prefetch=1)
    with pytest.raises(ConfigError, match="'x-max-priority'"):
        await anext(deliveries)


async def test_queue_names_from_settings_are_used_exactly(url: str) -> None:
    exact = f"{prefix_of(url)}.image.generate.task"  # prefixed only so teardown deletes it
    settings = AmqpSettings(queue_names={"image": exact})
    async with await AmqpBroker.connect(url, settings) as broker:
        await broker.publish([Message("image", "t1"), Message("image", "t2", delay_s=0.01)])
        assert await ready_in(url, exact) >= 1
        deliveries = broker.consume(["image"], prefetch=2)
        got = {(await anext(deliveries)).task_id for _ in range(2)}
        assert got == {"t1", "t2"}
        await deliveries.aclose()


async def test_status_reports_server_version_ready_messages_and_consumers(
    url: str, classic: AmqpBroker
) -> None:
    await classic.publish([Message("a", "t1"), Message("a", "t2")])
    status = await classic.status(["a", "never-used"])
    assert status.backend == "amqp" and status.connected
    assert "RabbitMQ 3." in status.detail or "RabbitMQ 4." in status.detail
    assert [(q.queue, q.ready, q.consumers) for q in status.queues] == [
        ("a", 2, 0),
        ("never-used", 0, 0),
    ]


async def test_status_of_a_closed_connection_says_so_instead_of_raising(url: str) -> None:
    broker = await AmqpBroker.connect(url, AmqpSettings())
    await broker.aclose()
    status = await broker.status(["a"])
    assert not status.connected and status.queues == []
    assert "not connected" in status.detail


async def test_a_mismatched_queue_named_in_settings_fails_at_connect(url: str) -> None:
    exact = f"{prefix_of(url)}.diagnosis_tasks"
    await declare(url, exact, {})  # as a seed system declared it: no priorities
    settings = AmqpSettings(queue_type="classic", queue_names={"diagnosis": exact})
    with pytest.raises(ConfigError, match="'x-max-priority'"):
        await AmqpBroker.connect(url, settings)


async def test_a_worker_facing_a_mismatched_queue_exits_with_the_reason(
    url: str, tmp_path: Path
) -> None:
    import asyncio
    import os
    import sys

    await declare(url, f"{prefix_of(url)}.debug", {"x-queue-type": "quorum"})
    env = {
        **os.environ,
        "GENQUEUE_DATA_DIR": str(tmp_path),
        "GENQUEUE_BROKER": url,
        "GENQUEUE_AMQP__QUEUE_TYPE": "classic",
        "GENQUEUE_LOG_LEVEL": "WARNING",
    }
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "genqueue",
        "worker",
        "--queues",
        "debug",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(worker.communicate(), 60)
    finally:
        if worker.returncode is None:
            worker.kill()
    text = output.decode()
    assert worker.returncode == 78, text  # EX_CONFIG: a supervisor does not restart it
    assert "x-queue-type" in text and "configuration error:" in text
