"""Worker-scoped resources in real worker processes: set up once per process (the worker, and
each pool process) however many tasks use them, and torn down when the worker stops."""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path

import pytest

from genqueue import Client, TaskStatus
from tests.helpers import Cluster, wait_until
from tests.resource_kinds import lines

KINDS = "tests.resource_kinds"


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return tmp_path / "resource.log"


@pytest.fixture
def resourced(tmp_path: Path, log: Path) -> Cluster:
    cluster = Cluster(tmp_path, extra_env={"GENQUEUE_TEST_RESOURCE_LOG": str(log)})
    cluster.start_api(["--kinds", KINDS])
    return cluster


def run_all(cluster: Cluster, kind: str, n: int) -> list[int]:
    """Submit ``n`` tasks of ``kind`` and return the pid each one's resource came from."""
    with Client(cluster.url) as client:
        ids = [client.submit(kind, {"n": i}).id for i in range(n)]
        done = [client.wait(task_id, timeout_s=60) for task_id in ids]
    assert all(t.status == TaskStatus.SUCCEEDED for t in done), done
    return [int(t.result["pid"]) for t in done if t.result]


@pytest.mark.parametrize("preload", [False, True])
def test_a_resource_is_set_up_once_per_process_and_torn_down_at_stop(
    resourced: Cluster, log: Path, preload: bool
) -> None:
    try:
        worker = resourced.start_worker(kinds=KINDS, concurrency=4, preload=preload)
        if preload:  # set up before any task: the thread side and both pool processes
            assert Counter(w for w, _ in _wait_lines(log, 3)) == {"setup": 3}
        threads = run_all(resourced, "test.resourced", 20)
        pooled = run_all(resourced, "test.resourced-in-pool", 20)
        assert set(threads) == {worker.pid}
        assert 1 <= len(set(pooled)) <= 2 and worker.pid not in pooled  # process_pool = 2
        setups = Counter(pid for w, pid in lines(log) if w == "setup")
        assert set(setups.values()) == {1}  # once per process, however many tasks
        used = {worker.pid, *pooled}
        # Preloaded: every pool process set it up at start, used or not.
        assert set(setups) == used if not preload else (len(setups) == 3 and used <= set(setups))
        worker.send_signal(signal.SIGTERM)
        assert resourced.wait_exit(worker, 30) == 0
        events = lines(log)
        torn = Counter(pid for w, pid in events if w == "teardown")
        assert torn == Counter(pid for w, pid in events if w == "setup")  # each once, same pids
    finally:
        resourced.stop()


def _wait_lines(log: Path, n: int) -> list[tuple[str, int]]:
    def enough() -> list[tuple[str, int]] | None:
        found = lines(log)
        return found if len(found) >= n else None

    return wait_until(enough, 30, 0.05, f"{n} log lines")
