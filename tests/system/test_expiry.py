"""Result expiry end to end: a real API with keys (GENQUEUE_AUTH=on), a worker, a retention of
2 s. Before expiry a task and its artifact read 200 with ``expires_at`` / ``Expires``; after
it, 410 Gone with ``{"error": "expired"}`` for its owner, before the purge (the record is
still there) and after it (the tombstone); another user gets 404, as for an unknown id."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from genqueue.artifacts import ArtifactStore
from genqueue.backends import open_broker, open_store
from genqueue.dispatch import Dispatcher
from genqueue.kinds import KindRegistry
from genqueue.settings import load_settings
from genqueue.sweeper import Sweeper
from tests.helpers import Cluster, cli_key, json_of, wait_until

pytestmark = pytest.mark.system

RETENTION_S = 2.0
PICTURE = {"prompt": "a tiny fox", "width": 64, "height": 64, "steps": 1}


@dataclass
class Deployment:
    cluster: Cluster
    ann: httpx.Client
    bob: httpx.Client


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    # Purge hourly: the test purges itself, to see both sides of it.
    env = {"GENQUEUE_AUTH": "on", "GENQUEUE_RETENTION": "2s", "GENQUEUE_PURGE_S": "1h"}
    cluster = Cluster(tmp_path, env)
    clients: list[httpx.Client] = []
    try:
        cluster.start_api()
        cluster.start_worker()
        for user in ("ann", "bob"):
            headers = {"Authorization": f"Bearer {cli_key(cluster, user, 'user')}"}
            clients.append(httpx.Client(base_url=cluster.url, headers=headers, timeout=30))
        yield Deployment(cluster, *clients)
    finally:
        for client in clients:
            client.close()
        cluster.stop()


def purge_now(cluster: Cluster) -> int:
    """One retention round, as the sweeper of any process runs it, on the cluster's store."""

    async def purge() -> int:
        settings = load_settings(
            data_dir=cluster.data_dir,
            store=cluster.store_url,
            broker=cluster.broker_url,
            retention=RETENTION_S,
        )
        store = await open_store(settings.store, settings)
        broker = await open_broker(settings.broker, settings)
        try:
            dispatcher = Dispatcher(store, broker, KindRegistry())
            return await Sweeper(dispatcher, ArtifactStore(settings.artifacts), settings).purge()
        finally:
            await broker.aclose()
            await store.aclose()

    return asyncio.run(purge())


def gone(answer: httpx.Response, task_id: str) -> dict[str, Any]:
    body = json_of(answer, 410)
    assert body["error"] == "expired", body
    assert task_id in body["message"] and "expired at" in body["message"], body
    assert "kept for 2s after a task finishes" in body["message"], body
    return body


def test_results_and_artifacts_answer_410_after_expiry_before_and_after_the_purge(
    deployment: Deployment,
) -> None:
    ann, bob, cluster = deployment.ann, deployment.bob, deployment.cluster
    queued = json_of(
        ann.post("/v1/tasks", json={"kind": "image.generate", "payload": PICTURE}), 201
    )
    assert queued["expires_at"] is None  # nothing to expire until it finishes
    task_id = queued["id"]
    done = json_of(ann.get(f"/v1/tasks/{task_id}/wait", params={"timeout": 60}))
    assert done["status"] == "succeeded", done
    finished_at = datetime.fromisoformat(done["finished_at"])
    expires_at = datetime.fromisoformat(done["expires_at"])
    assert expires_at == finished_at + timedelta(seconds=RETENTION_S)

    image_url = done["result"]["image_url"]
    picture = ann.get(image_url)
    assert picture.status_code == 200 and picture.content.startswith(b"\x89PNG")
    header = parsedate_to_datetime(picture.headers["expires"])
    assert abs(header - expires_at) < timedelta(seconds=1)  # an HTTP date has whole seconds
    assert bob.get(f"/v1/tasks/{task_id}").status_code == 404
    assert bob.get(image_url).status_code == 404

    # Expired, not purged yet: the record is there, but its results are not served.
    wait_until(lambda: ann.get(f"/v1/tasks/{task_id}").status_code == 410, 20, 0.1, "the expiry")
    gone(ann.get(f"/v1/tasks/{task_id}"), task_id)
    gone(ann.get(f"/v1/tasks/{task_id}/wait", params={"timeout": 1}), task_id)
    gone(ann.get(image_url), task_id)
    gone(ann.get("/v1/events", params={"task_id": task_id}), task_id)
    listed = json_of(ann.get("/v1/tasks"))["items"]
    assert [(t["id"], t["result"]) for t in listed] == [(task_id, None)]
    assert bob.get(f"/v1/tasks/{task_id}").status_code == 404
    assert bob.get(image_url).status_code == 404

    # Purged: the tombstone keeps answering 410 to its owner, and only to its owner.
    assert purge_now(cluster) == 1
    assert not (cluster.data_dir / "artifacts" / task_id).exists()
    assert json_of(ann.get("/v1/tasks"))["items"] == []
    gone(ann.get(f"/v1/tasks/{task_id}"), task_id)
    gone(ann.get(f"/v1/tasks/{task_id}/wait", params={"timeout": 1}), task_id)
    gone(ann.get(image_url), task_id)
    for answer in (bob.get(f"/v1/tasks/{task_id}"), bob.get(image_url)):
        assert json_of(answer, 404)["error"] == "not_found"
    unknown = json_of(ann.get("/v1/tasks/0123456789abcdef0123456789abcdef"), 404)
    assert unknown["error"] == "not_found"
