"""GET /v1/broker and the broker figures in /metrics, on every deployment."""

from __future__ import annotations

import httpx
import pytest

from genqueue import Client, TaskStatus
from tests.helpers import Cluster, wait_until

pytestmark = pytest.mark.system


def test_broker_status_shows_waiting_messages_then_drains(backend_cluster: Cluster) -> None:
    cluster = backend_cluster
    with Client(cluster.url) as client:
        batch = client.submit_batch([{"kind": "debug.echo", "payload": {}}] * 7, user="ops")
        status = client.broker()
        assert status.connected, status.detail
        assert status.backend == cluster.broker_url.split(":")[0].removesuffix("ql")
        debug = next(q for q in status.queues if q.name == "debug")
        assert debug.ready == 7
        assert debug.unacked in (None, 0)
        metrics = httpx.get(f"{cluster.url}/metrics", timeout=10).text
        assert 'genqueue_broker_depth{queue="debug"} 7.0' in metrics
        assert f'genqueue_broker_up{{backend="{status.backend}"}} 1.0' in metrics

        cluster.start_worker()
        wait_until(
            lambda: client.get_batch(batch.id).counts[TaskStatus.SUCCEEDED] == 7,
            30,
            0.05,
            "the batch to run",
        )
        drained = next(q for q in client.broker().queues if q.name == "debug")
        assert drained.ready == 0
        assert drained.finished_per_s > 0, "7 tasks finished since the first reading"
