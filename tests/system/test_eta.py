"""Estimated start and finish times in the API and the CLI, from measured run lengths."""

from __future__ import annotations

import subprocess
import sys

import pytest

from genqueue import Client, TaskStatus
from tests.helpers import Cluster, wait_until

pytestmark = pytest.mark.system

RUN_S = 0.4
SLEEP = {"seconds": RUN_S, "steps": 2}


def test_queued_and_running_tasks_have_sane_estimates(cluster: Cluster) -> None:
    with Client(cluster.url) as client:
        unserved = client.submit("debug.sleep", SLEEP)
        assert unserved.eta is None  # no worker serves its queue yet, nothing measured
        cluster.start_worker(concurrency=1)
        for _ in range(2):  # measured: the queue's runs take about RUN_S
            client.wait(client.submit("debug.sleep", SLEEP).id)
        client.wait(unserved.id)
        tasks = [client.submit("debug.sleep", SLEEP) for _ in range(5)]
        last = client.get(tasks[-1].id)
        if last.status == TaskStatus.QUEUED:
            assert last.eta is not None and last.eta.start_in_s is not None
            ahead = (last.position or 1) - 1
            # One slot: the runs ahead, and the one running, each about RUN_S.
            assert 0.5 * ahead * RUN_S <= last.eta.start_in_s <= 3 * (ahead + 1) * RUN_S
            assert last.eta.finish_in_s == pytest.approx(last.eta.start_in_s + RUN_S, rel=0.5)
        running = wait_until(
            lambda: next(
                (t for t in (client.get(t.id) for t in tasks) if t.status == "running"), None
            )
        )
        assert running.eta is not None and running.eta.finish_in_s is not None
        assert 0 <= running.eta.finish_in_s <= 3 * RUN_S
        assert running.eta.start_in_s is None
        done = client.wait(tasks[-1].id)
        assert done.eta is None


def test_the_cli_says_when_a_task_starts(cluster: Cluster) -> None:
    cluster.start_worker(concurrency=1)
    slow = {"seconds": 1.5, "steps": 3}
    with Client(cluster.url) as client:
        client.wait(client.submit("debug.sleep", slow).id)  # measured: runs take 1.5 s
        tasks = [client.submit("debug.sleep", slow) for _ in range(4)]
        last = tasks[-1].id
        # The API reads who is running a moment after it changed.
        wait_until(lambda: (eta := client.get(last).eta) and (eta.start_in_s or 0) > 1)
        shown = subprocess.run(
            [sys.executable, "-m", "genqueue", "status", last, "--url", cluster.url],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
        for task in tasks:
            client.cancel(task.id)
    assert "starts in about" in shown and "done in about" in shown, shown
