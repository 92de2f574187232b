"""Fair share between users, end to end on every backend pairing: one user's long batch does not
hold back another user's few tasks, and positions in the API follow the fair order."""

from __future__ import annotations

from pathlib import Path

import pytest

from genqueue import Client, TaskStatus
from tests.helpers import Cluster, wait_until

pytestmark = pytest.mark.system

SLEEP = {"kind": "debug.sleep", "payload": {"seconds": 0.05, "steps": 1}}


@pytest.mark.parametrize("backend", ["sqlite", "redis", "postgres", "amqp-postgres", "amqp-redis"])
def test_a_few_tasks_are_not_stuck_behind_another_users_batch(tmp_path: Path, backend: str) -> None:
    cluster = Cluster(tmp_path, backend=backend)
    try:
        cluster.start_api()
        with Client(cluster.url) as client:
            flood = client.submit_batch([SLEEP] * 120, user="flood")
            few = client.submit_batch([SLEEP] * 3, user="few")
            # In line: the few are interleaved with the batch, one of theirs per one of its.
            positions = [client.get(task_id).position for task_id in few.task_ids]
            assert positions == [2, 4, 6], positions
            cluster.start_worker(concurrency=2)
            done = [client.wait(task_id, timeout_s=60) for task_id in few.task_ids]
            assert all(task.status == TaskStatus.SUCCEEDED for task in done), cluster.logs()
            waiting = client.get_batch(flood.id).counts.get(TaskStatus.QUEUED, 0)
            # FIFO would have run all 120 first; fair order ran about as many of theirs.
            assert waiting >= 100, waiting
            wait_until(lambda: client.get_batch(flood.id).finished, timeout_s=60)
    finally:
        cluster.stop()
