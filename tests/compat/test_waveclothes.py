"""Seed 000 (WaveClothes) against genqueue on RabbitMQ + PostgreSQL, as the seed ran: its request
example replayed verbatim, its compose services on their own queues, its result queue read by
a plain aio-pika consumer (also after an API restart), its TASK_TIMEOUT and
RABBITMQ_RESULT_QUEUE taking effect; docs/migrating/000-waveclothes.md."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aio_pika
import httpx
import pytest

from genqueue.backends import open_broker, open_store
from genqueue.dispatch import Dispatcher, TaskRequest
from genqueue.kinds import load_kinds
from genqueue.settings import load_settings
from tests.helpers import AMQP_URL, Cluster, wait_for, wait_until

pytestmark = [pytest.mark.system, pytest.mark.amqp, pytest.mark.postgres]

SUBMIT = "/api/submit_task"
TAG = "WaveClothes image generation (seed 000)"
# The seed document's example, byte for byte.
SEED_REQUEST = {
    "prompt": "A beautiful sunset over mountains",
    "width": 512,
    "height": 512,
    "style": "photorealistic",
    "user_id": "user_001",
}
DATA_KEYS = {"success", "image_url", "task_id", "duration", "timestamp", "metadata"}
METADATA_KEYS = {"width", "height", "style", "prompt", "file_size", "generator"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """API and a worker of the default and basic queues; the seed's queue names, made unique
    under this test's prefix (so ``forget`` deletes them)."""
    data = tmp_path_factory.mktemp("waveclothes")
    c = Cluster(data, backend="amqp-postgres")
    prefix = parse_qs(urlsplit(c.broker_url).query)["prefix"][0]
    c.env.update(
        {
            "GENQUEUE_AMQP__QUEUE_NAMES": json.dumps({"image": f"{prefix}.image.generate.task"}),
            "RABBITMQ_RESULT_QUEUE": f"{prefix}.image.generate.result",
            "TASK_TIMEOUT": "30",
            "IMAGE_BASE_URL": c.url,
        }
    )
    try:
        c.start_api()
        c.start_worker(queues="image,image.basic", concurrency=2)
        yield c
    finally:
        c.stop()


class ResultQueue:
    """The seed's result consumer: a plain aio-pika reader of RABBITMQ_RESULT_QUEUE."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.seen: dict[str, dict[str, Any]] = {}

    async def wait(self, task_id: str, timeout_s: float = 20) -> dict[str, Any]:
        connection = await aio_pika.connect(AMQP_URL)
        async with connection:
            channel = await connection.channel()

            async def arrived() -> dict[str, Any] | None:
                queue = await channel.declare_queue(self.name, passive=True)
                while (message := await queue.get(no_ack=True, fail=False)) is not None:
                    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
                    body = json.loads(message.body)
                    self.seen[body["task_id"]] = body
                return self.seen.get(task_id)

            return await wait_for(arrived, timeout_s, 0.1, f"the result of {task_id}")


@pytest.fixture(scope="module")
def results(cluster: Cluster) -> ResultQueue:
    return ResultQueue(cluster.env["RABBITMQ_RESULT_QUEUE"])


async def test_the_seed_example_answers_in_the_seed_shape_and_reaches_the_result_queue(
    cluster: Cluster, results: ResultQueue
) -> None:
    answer = httpx.post(cluster.url + SUBMIT, json=SEED_REQUEST, timeout=60)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"success", "data"} and body["success"] is True
    data = body["data"]
    assert set(data) == DATA_KEYS and set(data["metadata"]) == METADATA_KEYS
    assert data["success"] is True and data["duration"] > 0
    assert data["metadata"] | {"file_size": 0, "generator": ""} == {
        "width": 512,
        "height": 512,
        "style": "photorealistic",
        "prompt": "A beautiful sunset over mountains",
        "file_size": 0,
        "generator": "",
    }
    image = httpx.get(data["image_url"], timeout=10)  # absolute, on IMAGE_BASE_URL
    assert data["image_url"].startswith(cluster.url)
    assert (
        image.content.startswith(b"\x89PNG") and len(image.content) == data["metadata"]["file_size"]
    )
    task = httpx.get(f"{cluster.url}/v1/tasks/{data['task_id']}", timeout=10).json()
    assert (task["queue"], task["user"]) == ("image", "user_001")

    published = await results.wait(data["task_id"])
    assert published == data


def test_a_compose_service_runs_on_its_own_queue(cluster: Cluster) -> None:
    request = {"prompt": "a red dress", "width": 64, "height": 64, "service": "basic"}
    answer = httpx.post(cluster.url + SUBMIT, json=request, timeout=60)
    assert answer.status_code == 200, answer.text
    task_id = answer.json()["data"]["task_id"]
    task = httpx.get(f"{cluster.url}/v1/tasks/{task_id}", timeout=10).json()
    assert task["queue"] == "image.basic"
    later = httpx.get(f"{cluster.url}/api/task/{task_id}", timeout=10)
    assert later.status_code == 200 and later.json()["data"]["task_id"] == task_id


@pytest.mark.parametrize(
    ("change", "field"),
    [({"width": 10}, "width"), ({"style": "neon"}, "style"), ({"prompt": ""}, "prompt")],
)
def test_bad_input_is_a_422_naming_the_field(
    cluster: Cluster, change: dict[str, Any], field: str
) -> None:
    answer = httpx.post(cluster.url + SUBMIT, json={**SEED_REQUEST, **change}, timeout=10)
    assert answer.status_code == 422, answer.text
    assert field in json.dumps(answer.json()["fields"])


def test_the_adapter_is_in_the_openapi_under_its_tag(cluster: Cluster) -> None:
    spec = httpx.get(f"{cluster.url}/openapi.json", timeout=10).json()
    assert spec["paths"][SUBMIT]["post"]["tags"] == [TAG]


async def submit_directly(cluster: Cluster, prompt: str) -> str:
    """Submit an ``image.generate`` through the core while no API runs."""
    queue_names = json.loads(cluster.env["GENQUEUE_AMQP__QUEUE_NAMES"])
    settings = load_settings(
        data_dir=cluster.data_dir, store=cluster.store_url, broker=cluster.broker_url
    )
    settings.amqp.queue_names.update(queue_names)
    store = await open_store(cluster.store_url, settings)
    broker = await open_broker(cluster.broker_url, settings)
    try:
        payload = {"prompt": prompt, "width": 64, "height": 64}
        request = TaskRequest(kind="image.generate", payload=payload)
        task, _ = await Dispatcher(store, broker, load_kinds()).submit(request)
    finally:
        await broker.aclose()
        await store.aclose()
    return task.id


async def test_after_a_restart_results_finished_meanwhile_are_published_and_waits_time_out(
    cluster: Cluster, results: ResultQueue
) -> None:
    """Last in the file: it restarts the module's API with TASK_TIMEOUT=1 s."""
    assert cluster.api is not None
    cluster.api.terminate()
    cluster.api.wait(15)
    task_id = await submit_directly(cluster, "while away")
    wait_until(lambda: cluster.succeeded_counts().get(task_id), 30, 0.1, "the task to run")
    cluster.env["TASK_TIMEOUT"] = "1"
    cluster.start_api()
    published = await results.wait(task_id, 30)
    assert published["success"] is True and published["metadata"]["prompt"] == "while away"

    request = {"prompt": "late", "width": 64, "height": 64, "service": "advanced"}
    answer = httpx.post(cluster.url + SUBMIT, json=request, timeout=30)  # no advanced worker
    assert answer.status_code == 504, answer.text
    body = answer.json()
    assert body["success"] is False and body["status"] == "queued"
    late_id = body["task_id"]
    assert late_id in body["message"] and body["status_url"] == f"/api/task/{late_id}"
    later = httpx.get(cluster.url + body["status_url"], timeout=10)
    assert later.status_code == 202 and later.json()["position"] == 1
