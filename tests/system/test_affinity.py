"""Warm-model affinity between real worker processes: tasks of a model one worker holds warm
go to it, not to a worker that would have to load the model; and a task is not kept from an
idle worker past the affinity wait."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import Cluster, wait_until
from tests.model_kinds import QUEUE, loads

pytestmark = pytest.mark.system
KINDS = "tests.model_kinds"


def _cluster(tmp_path: Path, backend: str, wait_s: float) -> Cluster:
    return Cluster(
        tmp_path,
        backend=backend,
        extra_env={
            "GENQUEUE_TEST_MODEL_LOAD_S": "0.2",
            "GENQUEUE_TEST_MODEL_LOG": str(tmp_path / "models.log"),
            "GENQUEUE_WORKER__AFFINITY_WAIT_S": str(wait_s),
            "GENQUEUE_WORKER__WARM_MODELS": "2",
            "GENQUEUE_WORKER__PREFETCH": "0",  # a busy worker holds no credit it cannot use
        },
    )


def _run(cluster: Cluster, models: list[str], **fields: Any) -> list[str]:
    tasks = [{"kind": "test.model", "payload": {"model": m, **fields}} for m in models]
    reply = httpx.post(f"{cluster.url}/v1/batches", json={"tasks": tasks}, timeout=10)
    assert reply.status_code == 201, reply.text
    ids: list[str] = reply.json()["task_ids"]
    return ids


def _done(cluster: Cluster, task_id: str) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        task: dict[str, Any] = httpx.get(f"{cluster.url}/v1/tasks/{task_id}", timeout=5).json()
        return task if task["status"] in ("succeeded", "failed") else None

    task = wait_until(finished, 60, 0.05, f"task {task_id} to finish")
    assert task["status"] == "succeeded", task
    return task


def _worker(cluster: Cluster, name: str) -> dict[str, Any]:
    workers = httpx.get(f"{cluster.url}/v1/workers", timeout=5).json()
    return next(w for w in workers if w["name"] == name and w["status"] == "online")


def _warm_up(cluster: Cluster, models: list[str]) -> None:
    """Worker ``a`` alone loads ``models`` and says so in its heartbeat; then ``b`` starts."""
    cluster.start_worker("a", concurrency=1, queues=QUEUE, kinds=KINDS)
    for task_id in _run(cluster, models):
        _done(cluster, task_id)
    wait_until(lambda: _worker(cluster, "a")["models"] == sorted(models), 20, 0.05, "a warm")
    _start_b(cluster)


def _time(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


@pytest.mark.parametrize("backend", ["sqlite", "amqp-postgres"])
def test_tasks_go_to_the_worker_that_holds_their_model(tmp_path: Path, backend: str) -> None:
    cluster = _cluster(tmp_path, backend, wait_s=60.0)
    try:
        cluster.start_api(["--kinds", KINDS])
        _warm_up(cluster, ["m1", "m2"])
        [warm_pid] = {pid for _, pid in loads(tmp_path / "models.log")}
        tasks = _run(cluster, ["m1", "m2"] * 10)
        served = {_done(cluster, task_id)["result"]["pid"] for task_id in tasks}
        assert served == {str(warm_pid)}
        assert len(loads(tmp_path / "models.log")) == 2, "a worker loaded a model it need not"
    finally:
        cluster.stop()


def test_a_task_left_to_a_busy_warm_worker_goes_to_an_idle_one_after_the_wait(
    tmp_path: Path,
) -> None:
    cluster = _cluster(tmp_path, "sqlite", wait_s=0.5)
    try:
        cluster.start_api(["--kinds", KINDS])
        cluster.start_worker("a", concurrency=1, queues=QUEUE, kinds=KINDS)
        _done(cluster, _run(cluster, ["m1"])[0])
        [warm_pid] = {pid for _, pid in loads(tmp_path / "models.log")}
        gate = tmp_path / "gate"  # the long task runs until it exists
        [long] = _run(cluster, ["m1"], gate=str(gate))
        wait_until(
            lambda: httpx.get(f"{cluster.url}/v1/tasks/{long}").json()["status"] == "running",
            20,
            0.05,
            "the long task to start on a",
        )
        _start_b(cluster)
        [short] = _run(cluster, ["m1"])
        done = _done(cluster, short)
        assert done["result"]["pid"] != str(warm_pid)
        running = httpx.get(f"{cluster.url}/v1/tasks/{long}").json()
        assert running["status"] == "running", "the short task waited for the warm worker"
        gate.touch()
        _done(cluster, long)
    finally:
        cluster.stop()


def _start_b(cluster: Cluster) -> None:
    """Worker ``b`` started, and past a heartbeat after its first: it has read the registry."""
    cluster.start_worker("b", concurrency=1, queues=QUEUE, kinds=KINDS)
    wait_until(lambda: _has_looked(cluster, "b"), 30, 0.05, "b to read the registry")


def _has_looked(cluster: Cluster, name: str) -> bool:
    try:
        worker = _worker(cluster, name)
    except StopIteration:
        return False
    return _time(worker["last_seen"]) > _time(worker["started_at"]) + 0.2
