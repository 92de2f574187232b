"""Fair share: how long a user's few tasks take behind another user's big batch.

    python -m bench.fairness [--flood 5000] [--few 20] [--task-s 0.2] [--backend sqlite]

Real API and worker processes (two workers, four slots each) run ``debug.sleep`` tasks of
``--task-s``. Three runs, each on a fresh data directory:

* idle: user B's ``--few`` tasks alone (the baseline);
* fair: user A submits ``--flood`` tasks, then B its few, under fair share (the default);
* FIFO: the same, with B's tasks submitted as user A, so they queue behind A's in arrival
  order: what a queue without fair share does.

Printed: for B's tasks, the time from B's submit to the last of them finished, and the median
and max wait (submit to start), each as a ratio to the idle run. Target (issue 10): fair <=
2.5 x idle.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from genqueue import Client, TaskStatus
from tests.helpers import Cluster, wait_until


@dataclass(frozen=True)
class Figures:
    total_s: float  # B's submit -> B's last finish
    median_wait_s: float
    max_wait_s: float


def run(folder: Path, backend: str, flood: int, few: int, task_s: float, as_user: str) -> Figures:
    folder.mkdir(parents=True)
    cluster = Cluster(folder, backend=backend)
    task = {"kind": "debug.sleep", "payload": {"seconds": task_s, "steps": 1}}
    try:
        cluster.start_api()
        for _ in range(2):
            cluster.start_worker(concurrency=4)
        wait_until(lambda: cluster.online_workers() == 2, timeout_s=30)
        with Client(cluster.url, timeout_s=60) as client:
            for start in range(0, flood, 500):
                client.submit_batch([task] * min(500, flood - start), user="a")
            began = time.time()
            batch = client.submit_batch([task] * few, user=as_user)
            wait_until(lambda: client.get_batch(batch.id).finished, timeout_s=600, every_s=0.05)
            ended = time.time()
            done = [client.get(task_id) for task_id in batch.task_ids]
        assert all(t.status == TaskStatus.SUCCEEDED for t in done)
        waits = [(t.started_at.timestamp() - began) for t in done if t.started_at]
        last = max(t.finished_at.timestamp() for t in done if t.finished_at)
        return Figures(min(last, ended) - began, statistics.median(waits), max(waits))
    finally:
        cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--flood", type=int, default=5000)
    parser.add_argument("--few", type=int, default=20)
    # A short AI task; at 0.02 s the figure is bound by the claims per second the machine
    # sustains under the flood, not by the order (see the issue 10 note).
    parser.add_argument("--task-s", type=float, default=0.2)
    parser.add_argument("--backend", default="sqlite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        idle = run(root / "idle", args.backend, 0, args.few, args.task_s, "b")
        fair = run(root / "fair", args.backend, args.flood, args.few, args.task_s, "b")
        fifo = run(root / "fifo", args.backend, args.flood, args.few, args.task_s, "a")
    print(
        f"{args.backend}: user B's {args.few} tasks of {args.task_s:g} s behind user A's"
        f" {args.flood} (8 slots)"
    )
    print(f"{'run':<6} {'all done':>9} {'x idle':>7} {'median wait':>12} {'max wait':>9}")
    for name, figures in (("idle", idle), ("fair", fair), ("FIFO", fifo)):
        print(
            f"{name:<6} {figures.total_s:8.2f}s {figures.total_s / idle.total_s:7.1f}"
            f" {figures.median_wait_s:11.2f}s {figures.max_wait_s:8.2f}s"
        )


if __name__ == "__main__":
    main()
