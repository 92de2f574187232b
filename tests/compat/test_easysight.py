"""Seed 004 (EasySight) against genqueue on RabbitMQ + PostgreSQL, as the seed ran: its request
examples replayed verbatim (status, queue status, workers, submit), a worker started as
``worker-001``, diagnosis results and worker heartbeats read from its ``task_results`` and
``worker_heartbeats`` queues by a plain aio-pika consumer, and its queue names taking effect
(TASK_RESULTS_QUEUE, WORKER_HEARTBEATS_QUEUE, GENQUEUE_AMQP__QUEUE_NAMES);
docs/migrating/004-easysight.md."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aio_pika
import httpx
import pytest

from tests import diagnose_scenes as scenes
from tests.helpers import AMQP_URL, Cluster, wait_for, wait_until

pytestmark = [pytest.mark.system, pytest.mark.amqp, pytest.mark.postgres]

TAG = "EasySight camera diagnosis (seed 004)"
FRAME = scenes.inline(scenes.dark(scenes.scene(width=320, height=240)))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """API and a diagnosis worker named as the seed names its workers; the seed's queue
    names, made unique under this test's prefix (so ``forget`` deletes them)."""
    data = tmp_path_factory.mktemp("easysight")
    c = Cluster(data, backend="amqp-postgres")
    prefix = parse_qs(urlsplit(c.broker_url).query)["prefix"][0]
    c.env.update(
        {
            "GENQUEUE_AMQP__QUEUE_NAMES": json.dumps({"diagnosis": f"{prefix}.diagnosis_tasks"}),
            "TASK_RESULTS_QUEUE": f"{prefix}.task_results",
            "WORKER_HEARTBEATS_QUEUE": f"{prefix}.worker_heartbeats",
        }
    )
    try:
        c.start_api()
        c.start_worker(name="worker-001", queues="diagnosis", concurrency=2)
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def http(cluster: Cluster) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=cluster.url, timeout=30) as client:
        yield client


async def read_until(queue_name: str, found: Any, timeout_s: float = 30) -> dict[str, Any]:
    """A plain aio-pika consumer of one of the seed's queues: the first JSON message for
    which ``found(body)`` holds."""
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()

        async def arrived() -> dict[str, Any] | None:
            queue = await channel.declare_queue(queue_name, passive=True)
            while (message := await queue.get(no_ack=True, fail=False)) is not None:
                body: dict[str, Any] = json.loads(message.body)
                if found(body):
                    return body
            return None

        return await wait_for(arrived, timeout_s, 0.1, f"a message on {queue_name}")


def test_the_seed_status_endpoints_show_rabbitmq_queues_and_workers(
    cluster: Cluster, http: httpx.Client
) -> None:
    def online() -> dict[str, Any] | None:
        answer = http.get("/api/v1/diagnosis/workers")  # the seed's troubleshooting call
        assert answer.status_code == 200
        body: dict[str, Any] = answer.json()
        return body if body["online"] == 1 else None

    workers = wait_until(online, 30, 0.1, "worker-001 to register")
    [worker] = workers["workers"]
    assert worker["worker_id"] == "worker-001" and worker["status"] == "online"
    assert worker["last_heartbeat"] and worker["max_concurrent_tasks"] == 2

    status = http.get("/api/v1/rabbitmq/status")
    assert status.status_code == 200, status.text
    body = status.json()
    assert body["connected"] is True and body["backend"] == "amqp"
    names = {k: cluster.env[k] for k in ("TASK_RESULTS_QUEUE", "WORKER_HEARTBEATS_QUEUE")}
    diagnosis = names["TASK_RESULTS_QUEUE"].replace("task_results", "diagnosis_tasks")
    assert body["queues"][diagnosis]["genqueue_queue"] == "diagnosis"
    wait_until(
        lambda: http.get("/api/v1/rabbitmq/status").json()["queues"][diagnosis]["consumer_count"],
        30,
        0.1,
        "the worker to consume diagnosis_tasks",
    )
    assert set(names.values()) <= set(http.get("/api/v1/rabbitmq/status").json()["queues"])

    queue = http.get("/api/v1/diagnosis/queue/status")
    assert queue.status_code == 200
    assert queue.json()["queue_name"] == diagnosis and queue.json()["online_workers"] == 1
    assert http.get("/health").status_code == 200


async def test_a_defined_task_submitted_twice_runs_once_and_its_result_is_published(
    cluster: Cluster, http: httpx.Client
) -> None:
    created = http.post(
        "/api/v1/diagnosis/tasks",
        json={"task_id": 4711, "image": FRAME, "camera_id": "gate-1", "auto_submit": False},
    )
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "pending" and created.json()["task_id"] == "4711"

    first = http.post("/api/v1/diagnosis/tasks/4711/submit")  # the seed's call
    assert first.status_code == 200, first.text
    again = http.post("/api/v1/diagnosis/tasks/4711/submit")
    assert first.json()["submitted"] is True and again.json()["submitted"] is False
    genqueue_id = first.json()["task"]["genqueue_task_id"]
    assert again.json()["task"]["genqueue_task_id"] == genqueue_id

    message = await read_until(cluster.env["TASK_RESULTS_QUEUE"], lambda b: b["task_id"] == "4711")
    assert message["status"] == "completed" and message["success"] is True
    assert message["genqueue_task_id"] == genqueue_id and message["worker_id"] == "worker-001"
    assert message["camera_id"] == "gate-1" and "dark" in message["result"]["alerts"]
    done = http.get("/api/v1/diagnosis/tasks/4711").json()
    assert done["status"] == "completed" and done["result"] == message["result"]
    tasks = http.get("/v1/tasks", params={"kind": "image.diagnose"}).json()["items"]
    assert [t["id"] for t in tasks].count(genqueue_id) == 1 and len(tasks) >= 1


def test_a_created_task_is_queued_at_once_as_in_the_seed_flow(http: httpx.Client) -> None:
    created = http.post("/api/v1/diagnosis/tasks", json={"image": FRAME})
    assert created.status_code == 201, created.text
    task_id = created.json()["task_id"]
    assert created.json()["status"] in ("queued", "running", "completed")
    resubmitted = http.post(f"/api/v1/diagnosis/tasks/{task_id}/submit").json()
    assert resubmitted["submitted"] is False
    wait_until(
        lambda: http.get(f"/api/v1/diagnosis/tasks/{task_id}").json()["status"] == "completed",
        30,
        0.1,
        "the diagnosis",
    )


async def test_worker_heartbeats_are_published_under_the_worker_id(cluster: Cluster) -> None:
    beat = await read_until(
        cluster.env["WORKER_HEARTBEATS_QUEUE"], lambda b: b["worker_id"] == "worker-001"
    )
    assert beat["status"] == "online" and beat["timestamp"] and beat["max_concurrent_tasks"] == 2


@pytest.mark.parametrize(
    ("path", "body", "status", "named"),
    [
        ("/api/v1/diagnosis/tasks", {"camera_id": "c1"}, 422, "image"),
        ("/api/v1/diagnosis/tasks", {"image": FRAME, "checks": ["smell"]}, 422, "checks"),
        ("/api/v1/diagnosis/tasks", {"image": FRAME, "task_id": "../x"}, 422, "task_id"),
        ("/api/v1/diagnosis/tasks/never-made/submit", None, 404, "never-made"),
    ],
)
def test_bad_input_is_a_clear_4xx(
    http: httpx.Client, path: str, body: dict[str, Any] | None, status: int, named: str
) -> None:
    answer = http.post(path, json=body)
    assert answer.status_code == status, answer.text
    assert named in answer.text


def test_a_task_id_defined_another_way_is_a_conflict(http: httpx.Client) -> None:
    first = {"task_id": "cam-7", "image": FRAME, "auto_submit": False}
    assert http.post("/api/v1/diagnosis/tasks", json=first).status_code == 201
    assert http.post("/api/v1/diagnosis/tasks", json=first).status_code == 200
    other = http.post("/api/v1/diagnosis/tasks", json={**first, "camera_id": "elsewhere"})
    assert other.status_code == 409, other.text


def test_the_adapter_is_in_the_openapi_under_its_tag(http: httpx.Client) -> None:
    spec = http.get("/openapi.json").json()
    assert spec["paths"]["/api/v1/diagnosis/tasks/{task_id}/submit"]["post"]["tags"] == [TAG]
    assert spec["paths"]["/api/v1/rabbitmq/status"]["get"]["tags"] == [TAG]
