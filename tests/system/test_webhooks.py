"""Webhooks end to end: a receiver the test runs verifies every signature and records each
delivery by webhook-id; deliveries are retried with the same id and body, survive an API
restart (events while it was down are delivered once it is back), and private targets are
refused unless allowed."""

from __future__ import annotations

import asyncio
import json
import threading
from collections import defaultdict
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from genqueue import Client
from genqueue.backends import open_store
from genqueue.errors import WebhookVerificationError
from genqueue.models import TaskStatus
from genqueue.settings import load_settings
from genqueue.webhook_signature import new_secret, verify
from tests.helpers import Cluster, free_port, json_of, stop_processes, wait_until

pytestmark = pytest.mark.system

SECRET = new_secret()


class Receiver:
    """A webhook endpoint: checks each signature, answers 500 to the first attempt of every
    delivery about a task in ``flaky``, keeps every body it accepted by webhook-id."""

    def __init__(self) -> None:
        self.bodies: dict[str, list[bytes]] = defaultdict(list)
        self.refused: list[str] = []  # bad signatures
        self.failed_once: set[str] = set()
        self.flaky: set[str] = set()
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                self.send_response(receiver.take(body, dict(self.headers.items())))
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self.port}/hook"

    def take(self, body: bytes, headers: dict[str, str]) -> int:
        try:
            message = verify(SECRET, body, headers)
        except WebhookVerificationError as exc:
            with self.lock:
                self.refused.append(str(exc))
            return 401
        task_id = message.json()["data"].get("id")
        with self.lock:
            if task_id in self.flaky and message.id not in self.failed_once:
                self.failed_once.add(message.id)
                return 500
            self.bodies[message.id].append(body)
        return 204

    def events(self) -> list[tuple[str, str]]:
        """(type, task or batch id) of every distinct delivery accepted."""
        with self.lock:
            sent = [json.loads(bodies[0]) for bodies in self.bodies.values()]
        return [(s["type"], s["data"]["id"]) for s in sent]

    def count(self, event: str, subject: str) -> int:
        return self.events().count((event, subject))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()


WEBHOOK_ENV = {
    "GENQUEUE_WEBHOOKS__SECRET": SECRET,
    "GENQUEUE_WEBHOOKS__ALLOW_PRIVATE": "true",
    "GENQUEUE_WEBHOOKS__RETRY_BASE_S": "0.2",
    "GENQUEUE_WEBHOOKS__RETRY_MAX_S": "1",
    "GENQUEUE_WEBHOOKS__PROGRESS_INTERVAL_S": "30",
}


def submit(url: str, kind: str, payload: dict[str, Any], webhook: dict[str, Any]) -> str:
    body = {"kind": kind, "payload": payload, "webhook": webhook}
    task = json_of(httpx.post(f"{url}/v1/tasks", json=body, timeout=10), 201)
    assert task["webhook"]["url"] == webhook["url"]
    return str(task["id"])


def status_in_store(cluster: Cluster, task_id: str) -> TaskStatus:
    async def read() -> TaskStatus:
        store = await open_store(cluster.store_url, load_settings(data_dir=cluster.data_dir))
        try:
            return (await store.get(task_id)).status
        finally:
            await store.aclose()

    return asyncio.run(read())


@pytest.mark.parametrize("backend", ["sqlite", "redis", "postgres"])
def test_every_event_asked_for_arrives_signed_once_per_id_across_retries_and_a_restart(
    tmp_path: Path, receiver: Receiver, backend: str
) -> None:
    cluster = Cluster(tmp_path, WEBHOOK_ENV, backend=backend)
    cluster.start_api()
    try:
        cluster.start_worker()
        url, hook = cluster.url, {"url": receiver.url}
        client = Client(url)
        ok = client.submit("debug.echo", {"n": 1}, webhook=receiver.url).id  # the client's way
        receiver.flaky.add(ok)  # its first attempt gets a 500
        bad = submit(url, "debug.fail", {}, {**hook, "events": ["task.started", "task.failed"]})
        slow = submit(
            url, "debug.sleep", {"seconds": 1, "steps": 10}, {**hook, "events": ["task.progress"]}
        )
        batch = client.submit_batch([{"kind": "debug.echo"}] * 2, webhook=hook).model_dump()
        expected = [
            ("task.succeeded", ok),
            ("task.started", bad),
            ("task.failed", bad),
            ("task.progress", slow),
            *(("task.succeeded", t) for t in batch["task_ids"]),
            ("batch.finished", batch["id"]),
        ]

        def arrived() -> bool:
            return all(e in receiver.events() for e in expected)

        wait_until(arrived, 60, 0.1, f"{expected} (got {receiver.events()})")
        wait_until(lambda: status_in_store(cluster, slow) == "succeeded", 30, 0.1, "slow done")

        # The API goes down; a task finishes meanwhile; the API comes back.
        late = submit(url, "debug.sleep", {"seconds": 1, "steps": 1}, hook)
        assert cluster.api is not None
        stop_processes([cluster.api])
        wait_until(lambda: status_in_store(cluster, late) == "succeeded", 30, 0.1, "late done")
        assert ("task.succeeded", late) not in receiver.events()
        cluster.start_api()
        wait_until(lambda: ("task.succeeded", late) in receiver.events(), 30, 0.1, "late's hook")

        assert receiver.refused == []
        assert receiver.count("task.progress", slow) == 1  # 10 steps, thinned to one
        assert receiver.count("batch.finished", batch["id"]) == 1
        for webhook_id, bodies in receiver.bodies.items():
            assert len(set(bodies)) == 1, f"{webhook_id} was sent with different bodies"
        assert ("task.started", ok) not in receiver.events()  # not asked for

        [delivery] = client.webhook_deliveries(ok)
        client.close()
        assert receiver.failed_once >= {delivery.id}
        assert delivery.state == "delivered" and delivery.attempts == 2
        assert [a.status for a in delivery.log] == [500, 204]
        assert delivery.log[0].error == "HTTP 500"
        answer = httpx.get(f"{cluster.url}/v1/batches/{batch['id']}/webhooks", timeout=5)
        assert answer.status_code == 200
        batch_log: list[dict[str, Any]] = answer.json()
        assert sorted(d["event"] for d in batch_log) == [
            "batch.finished",
            "task.succeeded",
            "task.succeeded",
        ]
        assert all(d["state"] == "delivered" for d in batch_log)
        metrics = httpx.get(f"{cluster.url}/metrics", timeout=5).text
        assert "genqueue_webhook_pending 0.0" in metrics
    finally:
        cluster.stop()


def test_a_private_target_is_refused_without_allow_private(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path, {"GENQUEUE_WEBHOOKS__SECRET": SECRET})
    cluster.start_api()
    try:
        for target in ("http://127.0.0.1:9/hook", "http://localhost:9/hook", "http://10.0.0.1/"):
            body = {"kind": "debug.echo", "webhook": {"url": target}}
            answer = json_of(httpx.post(f"{cluster.url}/v1/tasks", json=body, timeout=10), 422)
            assert [f["field"] for f in answer["fields"]] == ["webhook.url"]
        body = {"kind": "debug.echo", "webhook": {"url": "https://example.com/", "events": ["x"]}}
        answer = json_of(httpx.post(f"{cluster.url}/v1/tasks", json=body, timeout=10), 422)
        assert [f["field"] for f in answer["fields"]] == ["webhook.events.0"]
        batch = {"tasks": [{"kind": "debug.echo"}], "webhook": {"url": "http://127.0.0.1/"}}
        answer = json_of(httpx.post(f"{cluster.url}/v1/batches", json=batch, timeout=10), 422)
        assert [f["field"] for f in answer["fields"]] == ["webhook.url"]
        listed = json_of(httpx.get(f"{cluster.url}/v1/tasks", timeout=5), 200)
        assert listed["items"] == []  # nothing stored
    finally:
        cluster.stop()


def test_without_a_secret_a_webhook_is_refused_naming_the_setting(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    cluster.start_api()
    try:
        body = {"kind": "debug.echo", "webhook": {"url": "https://example.com/hook"}}
        answer = json_of(httpx.post(f"{cluster.url}/v1/tasks", json=body, timeout=10), 422)
        [field] = answer["fields"]
        assert field["field"] == "webhook" and "GENQUEUE_WEBHOOKS__SECRET" in field["message"]
        missing = httpx.get(f"{cluster.url}/v1/tasks/nope/webhooks", timeout=5)
        assert missing.status_code == 404
    finally:
        cluster.stop()
