"""Crash safety: a worker SIGKILLed mid-run loses nothing, and no result is recorded twice."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from genqueue import Client, TaskStatus
from tests.helpers import Cluster, wait_until

pytestmark = pytest.mark.system

TASKS = 500


def test_sigkilled_worker_loses_no_task_and_records_each_result_once(
    backend_cluster: Cluster,
) -> None:
    cluster = backend_cluster
    with Client(cluster.url) as client:
        batch = client.submit_batch(
            [{"kind": "debug.sleep", "payload": {"seconds": 0.1, "steps": 1}}] * TASKS,
            user="crash",
        )
        victim = cluster.start_worker(name="victim", concurrency=4)
        for i in range(2):
            cluster.start_worker(name=f"survivor-{i}", concurrency=4)

        def victim_is_busy() -> bool:
            workers = {w.name: w for w in client.workers()}
            done = client.get_batch(batch.id).counts[TaskStatus.SUCCEEDED]
            return "victim" in workers and len(workers["victim"].running) > 0 and done > 50

        wait_until(victim_is_busy, 60, 0.05, "the victim to be mid-run")
        victim.send_signal(signal.SIGKILL)
        wait_until(lambda: client.get_batch(batch.id).finished, 120, 0.2, "the batch to finish")

        final = client.get_batch(batch.id)
        assert final.counts[TaskStatus.SUCCEEDED] == TASKS, final.counts
        recorded = cluster.succeeded_counts()
        assert len(recorded) == TASKS and set(recorded.values()) == {1}
        retried = [
            t for t in client.list_tasks(batch_id=batch.id, limit=500).items if t.attempts > 1
        ]
        assert retried, "the victim held tasks; they should have run again elsewhere"
        victim_info = next(w for w in client.workers() if w.name == "victim")
        assert victim_info.status == "offline"
    assert httpx.get(f"{cluster.url}/health").status_code == 200


def children_of(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(c) for c in (task / "children").read_text().split()}
    return found


def test_pool_process_dies_with_a_sigkilled_worker(cluster: Cluster) -> None:
    worker = cluster.start_worker(name="holder", concurrency=1)
    with Client(cluster.url) as client:
        task = client.submit("debug.spin", {"seconds": 300})
        wait_until(lambda: client.get(task.id).progress.fraction > 0, 60, 0.05, "spin running")
        pool = children_of(worker.pid)
        assert pool, "the spin runs in a pool process"
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        wait_until(
            lambda: not any(Path(f"/proc/{p}").exists() for p in pool),
            10,
            0.05,
            "the orphaned pool process to die",
        )


def test_with_default_settings_a_killed_workers_task_runs_elsewhere_within_15_s(
    tmp_path: Path,
) -> None:
    defaults = {"GENQUEUE_LEASE_S": "10", "GENQUEUE_HEARTBEAT_S": "1", "GENQUEUE_SWEEP_S": "1"}
    cluster = Cluster(tmp_path, defaults)
    cluster.start_api()
    try:
        with Client(cluster.url) as client:
            victim = cluster.start_worker(name="victim", concurrency=1)
            task = client.submit("debug.sleep", {"seconds": 120, "steps": 120})
            wait_until(
                lambda: client.get(task.id).status == TaskStatus.RUNNING,
                30,
                0.05,
                "the task to run on the victim",
            )
            cluster.start_worker(name="rescuer", concurrency=1)
            wait_until(lambda: cluster.online_workers() == 2, 30, 0.05, "the rescuer online")
            victim.send_signal(signal.SIGKILL)

            def rescued() -> bool:
                now = client.get(task.id)
                return now.status == TaskStatus.RUNNING and now.attempts == 2

            wait_until(rescued, 15, 0.05, "the task to run again on the rescuer")
            assert client.get(task.id).worker_id.startswith("rescuer")  # type: ignore[union-attr]
    finally:
        cluster.stop()
