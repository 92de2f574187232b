"""RabbitMQ faults for real: a restarted or disconnected broker, a SIGKILLed worker holding
unacknowledged messages, and submits while the broker is down. Nothing accepted is lost, and
each result is recorded once."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from genqueue import Client, TaskStatus
from tests.helpers import Cluster, rabbitmq_back_up, rabbitmqctl, wait_until

pytestmark = [pytest.mark.system, pytest.mark.amqp]

SLEEP = {"kind": "debug.sleep", "payload": {"seconds": 0.1, "steps": 1}}


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path, backend="amqp-redis")
    c.start_api()
    yield c
    c.stop()


def healthy(cluster: Cluster) -> bool:
    try:
        return httpx.get(f"{cluster.url}/health", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def depth(cluster: Cluster, queue: str) -> int:
    queues = httpx.get(f"{cluster.url}/v1/queues", timeout=10).json()
    return int(next(q["depth"] for q in queues if q["name"] == queue))


def assert_each_succeeded_once(cluster: Cluster, client: Client, batch_ids: list[str]) -> None:
    expected = 0
    for batch_id in batch_ids:
        batch = client.get_batch(batch_id)
        assert batch.counts[TaskStatus.SUCCEEDED] == batch.size, batch.counts
        expected += batch.size
    recorded = cluster.succeeded_counts()
    assert len(recorded) == expected and set(recorded.values()) == {1}


@pytest.mark.parametrize("fault", ["restart", "dropped-connections"])
def test_broker_fault_mid_run_loses_nothing_and_runs_each_task_once(
    cluster: Cluster, fault: str
) -> None:
    with Client(cluster.url) as client:
        batch = client.submit_batch([SLEEP] * 300, user="fault")
        for i in range(2):
            cluster.start_worker(name=f"w{i}", concurrency=4)

        def succeeded() -> int:
            return client.get_batch(batch.id).counts[TaskStatus.SUCCEEDED]

        wait_until(lambda: succeeded() >= 30, 60, 0.05, "the batch to be under way")
        try:
            if fault == "restart":
                rabbitmqctl("stop_app")
                wait_until(lambda: not healthy(cluster), 30, 0.1, "the API to see the outage")
                during = succeeded()
                assert during < batch.size, "the outage must come mid-run"
            else:
                rabbitmqctl("close_all_connections", "genqueue fault test")
        finally:
            rabbitmq_back_up()
        wait_until(lambda: healthy(cluster), 60, 0.1, "the API to reconnect")
        # The producer side reconnected too: a batch submitted now is delivered and run.
        after = client.submit_batch([SLEEP] * 20, user="fault")
        wait_until(lambda: client.get_batch(batch.id).finished, 120, 0.2, "the first batch")
        wait_until(lambda: client.get_batch(after.id).finished, 60, 0.2, "the second batch")
        assert_each_succeeded_once(cluster, client, [batch.id, after.id])
        assert cluster.online_workers() == 2


def test_unacked_messages_of_a_sigkilled_worker_are_delivered_again(cluster: Cluster) -> None:
    with Client(cluster.url) as client:
        # concurrency 1 + prefetch 4: the victim runs one task and holds four more unacked.
        victim = cluster.start_worker(name="victim", concurrency=1)
        batch = client.submit_batch(
            [{"kind": "debug.sleep", "payload": {"seconds": 8, "steps": 8}}] * 6, user="kill"
        )
        wait_until(lambda: depth(cluster, "debug") == 1, 30, 0.05, "the victim to hold five")
        wait_until(
            lambda: client.get_batch(batch.id).counts[TaskStatus.RUNNING] == 1,
            30,
            0.05,
            "the victim to run one",
        )
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        # RabbitMQ requeues everything the dead connection held, at once (and once the lease
        # expires, the sweeper publishes the running one again: hence at least 6).
        wait_until(lambda: depth(cluster, "debug") >= 6, 10, 0.05, "the held messages back")
        cluster.start_worker(name="rescuer", concurrency=6)
        wait_until(lambda: client.get_batch(batch.id).finished, 60, 0.1, "the batch to finish")
        assert_each_succeeded_once(cluster, client, [batch.id])
        attempts = sorted(t.attempts for t in client.list_tasks(batch_id=batch.id).items)
        # The one that was running ran again after its lease expired; the held ones ran once.
        assert attempts == [1, 1, 1, 1, 1, 2]


def submit(cluster: Cluster, payload: dict[str, Any]) -> httpx.Response:
    body = {"kind": "debug.echo", "payload": payload}
    return httpx.post(f"{cluster.url}/v1/tasks", json=body, timeout=30)


def test_submit_while_the_broker_is_down_is_accepted_and_runs_once_it_is_back(
    cluster: Cluster,
) -> None:
    try:
        rabbitmqctl("stop_app")
        # A worker started while RabbitMQ is down waits for it instead of exiting.
        cluster.start_worker(name="w", concurrency=2)
        # The store is up: the task is stored with its outbox entry, so it is accepted.
        accepted = submit(cluster, {"n": 1})
        assert accepted.status_code == 201, accepted.text
        task_id = accepted.json()["id"]
        assert accepted.json()["status"] == "queued"
    finally:
        rabbitmq_back_up()
    with Client(cluster.url) as client:
        wait_until(
            lambda: client.get(task_id).status == TaskStatus.SUCCEEDED, 60, 0.1, "the task to run"
        )
        assert client.get(task_id).result == {"n": 1}
    assert cluster.succeeded_counts() == {task_id: 1}


async def test_a_lease_recovered_while_the_broker_is_down_is_published_once_it_is_back(
    tmp_path: Path,
) -> None:
    from genqueue.artifacts import ArtifactStore
    from genqueue.backends import open_broker, open_store
    from genqueue.dispatch import Dispatcher, TaskRequest
    from genqueue.errors import BackendUnavailableError
    from genqueue.kinds import load_kinds
    from genqueue.settings import load_settings
    from genqueue.sweeper import Sweeper
    from tests.helpers import backend_url, forget, let_time_pass, wait_for

    store_url, broker_url = backend_url("redis", tmp_path), backend_url("amqp", tmp_path)
    settings = load_settings(data_dir=tmp_path, store=store_url, broker=broker_url)
    store = await open_store(store_url, settings)
    broker = await open_broker(broker_url, settings)
    dispatcher = Dispatcher(store, broker, load_kinds())
    sweeper = Sweeper(dispatcher, ArtifactStore(str(tmp_path / "artifacts")), settings)
    try:
        task, _ = await dispatcher.submit(TaskRequest(kind="debug.echo"))
        assert await store.claim(task.id, "dead-worker", 0.05) is not None
        rabbitmqctl("stop_app")
        try:
            await let_time_pass(0.1)  # the dead worker's lease runs out
            with pytest.raises(BackendUnavailableError):
                await sweeper.recover()
            assert (await store.get(task.id)).status == TaskStatus.QUEUED
        finally:
            rabbitmq_back_up()

        # The sweeper that requeued it died meanwhile: another process's relay publishes it.
        other = Sweeper(dispatcher, ArtifactStore(str(tmp_path / "artifacts")), settings)

        async def published() -> bool:
            try:
                await other.relay()
                # At least once: a publish that timed out during the outage may land as well.
                return await broker.depth("debug") >= 1
            except BackendUnavailableError:
                return False  # still reconnecting

        await wait_for(published, 60, 0.2, "the requeued task to be published")
    finally:
        await broker.aclose()
        await store.aclose()
        forget(store_url)
        forget(broker_url)
