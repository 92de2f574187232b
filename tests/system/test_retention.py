"""Retention: records and artifacts older than GENQUEUE_RETENTION are swept away."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from genqueue import Client, TaskStatus
from tests.helpers import Cluster, wait_until

pytestmark = pytest.mark.system


def test_finished_tasks_and_artifacts_expire_after_retention(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path, {"GENQUEUE_RETENTION": "2s", "GENQUEUE_PURGE_S": "0.2"})
    cluster.start_api()
    try:
        cluster.start_worker()
        with Client(cluster.url) as client:
            task = client.submit(
                "image.generate", {"prompt": "tiny", "width": 64, "height": 64, "steps": 1}
            )
            done = client.wait(task.id, timeout_s=60)
            assert done.status == TaskStatus.SUCCEEDED, done.error
            assert done.result is not None
            image_url = f"{cluster.url}{done.result['image_url']}"
            assert httpx.get(image_url).status_code == 200
            waiting = client.submit("debug.echo", {}, queue="nobody-listens")

            def purged() -> bool:
                return not (tmp_path / "artifacts" / task.id).exists()

            wait_until(purged, 20, 0.1, "the finished task to be purged")
            # Gone, not unknown: 410 from the purge's tombstone (tests/system/test_expiry.py).
            assert httpx.get(f"{cluster.url}/v1/tasks/{task.id}").status_code == 410
            assert httpx.get(image_url).status_code == 410
            assert client.get(waiting.id).status == TaskStatus.QUEUED  # unfinished work stays
    finally:
        cluster.stop()
