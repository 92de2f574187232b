"""Graceful shutdown: SIGTERM lets in-flight tasks finish (or hands them back); none is lost."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from genqueue import Client, TaskStatus
from tests.conftest import DEPLOYMENTS
from tests.helpers import Cluster, wait_until

pytestmark = pytest.mark.system


def running_count(client: Client, batch_id: str) -> int:
    return client.get_batch(batch_id).counts[TaskStatus.RUNNING]


def test_sigterm_lets_in_flight_tasks_finish_and_hands_back_the_rest(
    backend_cluster: Cluster,
) -> None:
    cluster = backend_cluster
    with Client(cluster.url) as client:
        batch = client.submit_batch(
            [{"kind": "debug.sleep", "payload": {"seconds": 1.5, "steps": 3}}] * 8
        )
        worker = cluster.start_worker(name="leaving", concurrency=4)
        wait_until(lambda: running_count(client, batch.id) == 4, 30, 0.05, "4 tasks running")
        worker.send_signal(signal.SIGTERM)
        assert cluster.wait_exit(worker, 30) == 0
        counts = client.get_batch(batch.id).counts
        # The 4 in flight finished during the grace period; the others were never started.
        assert counts[TaskStatus.SUCCEEDED] == 4 and counts[TaskStatus.QUEUED] == 4, counts
        cluster.start_worker(name="next", concurrency=4)
        wait_until(lambda: client.get_batch(batch.id).finished, 30, 0.05, "batch to finish")
        tasks = client.list_tasks(batch_id=batch.id).items
        assert all(t.status == TaskStatus.SUCCEEDED and t.attempts == 1 for t in tasks)


@pytest.mark.parametrize("backend", DEPLOYMENTS)
def test_sigterm_past_the_grace_period_requeues_without_spending_attempts(
    tmp_path: Path, backend: str
) -> None:
    cluster = Cluster(tmp_path, {"GENQUEUE_WORKER__SHUTDOWN_GRACE_S": "0.5"}, backend)
    cluster.start_api()
    try:
        with Client(cluster.url) as client:
            batch = client.submit_batch(
                [{"kind": "debug.sleep", "payload": {"seconds": 60, "steps": 60}}] * 2
            )
            worker = cluster.start_worker(name="impatient", concurrency=2)
            wait_until(lambda: running_count(client, batch.id) == 2, 30, 0.05, "2 running")
            worker.send_signal(signal.SIGTERM)
            assert cluster.wait_exit(worker, 20) == 0
            tasks = client.list_tasks(batch_id=batch.id).items
            assert [(t.status, t.attempts) for t in tasks] == [(TaskStatus.QUEUED, 0)] * 2
            # Handed back to the queue: another worker picks them up at once.
            cluster.start_worker(name="taker", concurrency=2)
            wait_until(lambda: running_count(client, batch.id) == 2, 30, 0.05, "taken over")
    finally:
        cluster.stop()
