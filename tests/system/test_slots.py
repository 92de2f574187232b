"""Capacity slots in a real worker: a worker with one GPU runs one GPU task at a time and CPU
tasks beside it; a worker without a GPU leaves GPU kinds alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from genqueue import Client, TaskStatus
from tests.helpers import Cluster, wait_until

pytestmark = pytest.mark.system

KINDS = "tests.slot_kinds"


def test_one_gpu_runs_one_gpu_task_at_a_time_and_cpu_tasks_beside_it(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    gate = tmp_path / "gate"
    try:
        cluster.start_api(["--kinds", KINDS])
        cluster.start_worker(kinds=KINDS, concurrency=4, slots="gpu=1")
        with Client(cluster.url) as client:
            gpu = [client.submit("test.gpu", {"gate": str(gate)}).id for _ in range(2)]

            def one_running() -> bool:
                return [client.get(i).status for i in gpu].count(TaskStatus.RUNNING) == 1

            wait_until(one_running, 30, 0.05, "a GPU task to run")
            cpu = [client.submit("test.cpu", {}).id for _ in range(3)]
            # The CPU tasks run beside the GPU task, while the second GPU task waits.
            assert all(client.wait(i, timeout_s=30).status == TaskStatus.SUCCEEDED for i in cpu)
            assert sorted(client.get(i).status for i in gpu) == [
                TaskStatus.QUEUED,
                TaskStatus.RUNNING,
            ]
            gate.touch()
            done = [client.wait(i, timeout_s=30) for i in gpu]
        assert all(t.status == TaskStatus.SUCCEEDED for t in done), cluster.logs()
        # One after the other: the second started once the first had finished.
        first, second = sorted(done, key=lambda t: t.started_at or t.created_at)
        assert first.finished_at and second.started_at and second.started_at >= first.finished_at
    finally:
        cluster.stop()


def test_a_worker_without_a_gpu_leaves_gpu_kinds_to_others(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    try:
        cluster.start_api(["--kinds", KINDS])
        cluster.start_worker(kinds=KINDS, queues="gpu,cpu")
        with Client(cluster.url) as client:
            gpu = client.submit("test.gpu", {"gate": str(tmp_path / "never")}).id
            cpu = client.submit("test.cpu", {}).id
            assert client.wait(cpu, timeout_s=30).status == TaskStatus.SUCCEEDED
            assert client.get(gpu).status == TaskStatus.QUEUED
            worker = next(w for w in client.workers() if w.status == "online")
            assert worker.queues == ["cpu"]
        assert "lacks" in cluster.logs() and "gpu=1" in cluster.logs()
    finally:
        cluster.stop()
