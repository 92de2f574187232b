"""Dynamic batching in real worker processes, on every backend pairing: tasks of a batched kind
run together, and each keeps its own outcome, cancellation and record; a worker killed in the
middle of a batch loses none of it."""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from genqueue import Client, TaskStatus
from tests.batch_kinds import MAX_SIZE, batches
from tests.helpers import Cluster, wait_until

pytestmark = pytest.mark.system

KINDS = "tests.batch_kinds"
PAIRINGS = ["sqlite", "redis", "postgres", "amqp-postgres", "amqp-redis"]


def batched_cluster(tmp_path: Path, backend: str) -> Cluster:
    env = {"GENQUEUE_TEST_BATCH_LOG": str(tmp_path / "batches.log")}
    cluster = Cluster(tmp_path, backend=backend, extra_env=env)
    cluster.start_api(["--kinds", KINDS])
    return cluster


def items(n: int, **fields: object) -> list[dict[str, Any]]:
    return [{"kind": "test.batched", "payload": {"n": i, **fields}} for i in range(n)]


@pytest.mark.parametrize("backend", PAIRINGS)
def test_tasks_run_in_batches_and_a_bad_item_fails_alone(tmp_path: Path, backend: str) -> None:
    cluster = batched_cluster(tmp_path, backend)
    try:
        with Client(cluster.url) as client:
            tasks = [*items(12), {"kind": "test.batched", "payload": {"n": 99, "fail": True}}]
            batch = client.submit_batch(tasks)
            cluster.start_worker(kinds=KINDS, concurrency=2)
            done = [client.wait(task_id, timeout_s=60) for task_id in batch.task_ids]
        *good, bad = done
        assert all(t.status == TaskStatus.SUCCEEDED for t in good), cluster.logs()
        assert [t.result for t in good] == [{"double": 2 * i} for i in range(12)]
        assert bad.status == TaskStatus.FAILED and "item 99 is bad" in (bad.error or "")
        calls = batches(tmp_path / "batches.log")
        assert Counter(i for call in calls for i in call) == Counter(batch.task_ids)  # once each
        assert max(len(call) for call in calls) > 1 and all(len(c) <= MAX_SIZE for c in calls)
        sizes = {i: len(call) for call in calls for i in call}
        assert [t.batch_size for t in done] == [sizes[t.id] for t in done]
    finally:
        cluster.stop()


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_cancelling_one_task_of_a_running_batch_leaves_the_others(
    tmp_path: Path, backend: str
) -> None:
    cluster = batched_cluster(tmp_path, backend)
    gate = tmp_path / "gate"
    try:
        with Client(cluster.url) as client:
            batch = client.submit_batch(items(4, gate=str(gate)))
            cluster.start_worker(kinds=KINDS, concurrency=2)
            running = lambda: all(  # noqa: E731
                client.get(i).status == TaskStatus.RUNNING for i in batch.task_ids
            )
            wait_until(running, 30, 0.05, "the batch to run")
            first, *rest = batch.task_ids
            client.cancel(first)
            assert client.wait(first, timeout_s=30).status == TaskStatus.CANCELLED
            assert all(client.get(i).status == TaskStatus.RUNNING for i in rest)
            gate.touch()
            done = [client.wait(i, timeout_s=30) for i in rest]
        assert all(t.status == TaskStatus.SUCCEEDED for t in done), cluster.logs()
    finally:
        cluster.stop()


@pytest.mark.parametrize("backend", PAIRINGS)
def test_a_batch_killed_midway_runs_again_and_each_result_is_recorded_once(
    tmp_path: Path, backend: str
) -> None:
    cluster = batched_cluster(tmp_path, backend)
    gate = tmp_path / "gate"
    try:
        with Client(cluster.url) as client:
            batch = client.submit_batch(items(5, gate=str(gate)))
            doomed = cluster.start_worker(kinds=KINDS, concurrency=2)
            wait_until(lambda: batches(tmp_path / "batches.log"), 30, 0.05, "a batch to start")
            doomed.send_signal(signal.SIGKILL)
            doomed.wait(10)
            gate.touch()
            cluster.start_worker(kinds=KINDS, concurrency=2)
            done = [client.wait(i, timeout_s=60) for i in batch.task_ids]
        assert all(t.status == TaskStatus.SUCCEEDED for t in done), cluster.logs()
        assert all(t.attempts == 2 for t in done if t.id in batches(tmp_path / "batches.log")[0])
        assert [t.result for t in done] == [{"double": 2 * i} for i in range(5)]
    finally:
        cluster.stop()
