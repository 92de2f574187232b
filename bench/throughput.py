"""End-to-end throughput and submit-to-start latency of no-op tasks on the embedded backend.

    python -m bench.throughput [--tasks 2000] [--latency-samples 200]

Three figures, each beside its baseline from the same run (the machine is shared and noisy,
so ratios mean more than absolute numbers):

* raw ceiling: a bare sqlite3 loop doing the least work per task that gives the same
  guarantee (insert task + message, claim, record result, delete message), one transaction
  per step, in one process;
* genqueue: tasks/s from the first submit to the last success, with 1 and 2 worker
  processes (``debug.echo``, submitted through the HTTP API in batches of 500);
* latency: created_at -> started_at of single tasks submitted one at a time to idle workers;
* pre-queued drain beside Huey (``SqliteHuey``, from the peers' virtualenv .venv-bench, its
  file in the same temporary folder): N queued before any worker starts, then drained by 1 and
  by 2 worker processes, timed from the first completion to the last (bench/peer_apps/drain.py).
  Huey's done counter is on Redis database 15 (bench/peer_apps/common.py), as for every peer.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from bench.peer_apps.drain import drain_rate
from bench.runs import Row, peer_run, print_table
from tests.helpers import Cluster, wait_until


def raw_ceiling(tasks: int, folder: Path) -> float:
    """Tasks/s of the minimal SQLite work per task, same pragmas as genqueue."""
    conn = sqlite3.connect(folder / "raw.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, status TEXT, result TEXT)")
    conn.execute("CREATE TABLE m (id INTEGER PRIMARY KEY, task INTEGER, lock REAL)")
    started = time.perf_counter()
    for i in range(tasks):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t VALUES (?, 'queued', NULL)", (i,))
        conn.execute("INSERT INTO m (task) VALUES (?)", (i,))
        conn.execute("COMMIT")
    for _ in range(tasks):
        conn.execute("BEGIN IMMEDIATE")
        mid, task = conn.execute("SELECT id, task FROM m WHERE lock IS NULL LIMIT 1").fetchone()
        conn.execute("UPDATE m SET lock = 1 WHERE id = ?", (mid,))
        conn.execute("COMMIT")
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE t SET status = 'running' WHERE id = ? AND status = 'queued'", (task,))
        conn.execute("COMMIT")
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE t SET status = 'succeeded', result = '{}' WHERE id = ?", (task,))
        conn.execute("COMMIT")
        conn.execute("DELETE FROM m WHERE id = ?", (mid,))
    elapsed = time.perf_counter() - started
    conn.close()
    return tasks / elapsed


def genqueue_throughput(tasks: int, workers: int, folder: Path) -> float:
    cluster = Cluster(folder, {"GENQUEUE_LOG_LEVEL": "WARNING"})
    cluster.start_api()
    try:
        for i in range(workers):
            cluster.start_worker(name=f"bench-{i}", concurrency=16, queues="debug")
        wait_until(lambda: cluster.online_workers() == workers, 30, 0.05, "workers online")
        with httpx.Client(base_url=cluster.url, timeout=60) as http:
            started = time.perf_counter()
            batches = []
            for start in range(0, tasks, 500):
                size = min(500, tasks - start)
                body = {"tasks": [{"kind": "debug.echo", "payload": {}}] * size}
                batches.append(http.post("/v1/batches", json=body).json()["id"])

            def all_done() -> bool:
                return all(http.get(f"/v1/batches/{b}").json()["finished"] for b in batches)

            wait_until(all_done, 600, 0.02, "all tasks to finish")
            return tasks / (time.perf_counter() - started)
    finally:
        cluster.stop()


def genqueue_drain(tasks: int, workers: int, folder: Path) -> tuple[float, float]:
    """(tasks/s, enqueue/s): N submitted through the API before any worker starts, then the
    drain, counted from the store file by a read-only connection (no load on the API)."""
    cluster = Cluster(folder, {"GENQUEUE_LOG_LEVEL": "WARNING"})
    cluster.start_api()
    try:
        with httpx.Client(base_url=cluster.url, timeout=60) as http:
            started = time.perf_counter()
            for start in range(0, tasks, 500):
                body = {"tasks": [{"kind": "debug.echo", "payload": {}}] * min(500, tasks - start)}
                http.post("/v1/batches", json=body).raise_for_status()
            enqueue = tasks / (time.perf_counter() - started)
        db = sqlite3.connect(f"file:{folder / 'genqueue.db'}?mode=ro", uri=True)

        def succeeded() -> int:
            sql = "SELECT count(*) FROM tasks WHERE queue = 'debug' AND status = 'succeeded'"
            return int(db.execute(sql).fetchone()[0])

        try:
            for i in range(workers):
                cluster.start_worker(name=f"drain-{i}", concurrency=16, queues="debug")
            return drain_rate(succeeded, tasks), enqueue
        finally:
            db.close()
    finally:
        cluster.stop()


def submit_to_start(samples: int, folder: Path) -> tuple[float, float]:
    cluster = Cluster(folder)
    cluster.start_api()
    try:
        cluster.start_worker(name="latency", concurrency=4, queues="debug")
        wait_until(lambda: cluster.online_workers() == 1, 30, 0.05, "worker online")
        delays = []
        with httpx.Client(base_url=cluster.url, timeout=30) as http:
            for _ in range(samples):
                task = http.post("/v1/tasks", json={"kind": "debug.echo"}).json()
                done = http.get(f"/v1/tasks/{task['id']}/wait", params={"timeout": 10}).json()
                created = _ts(done["created_at"])
                delays.append(_ts(done["started_at"]) - created)
        delays.sort()
        return statistics.median(delays), delays[int(len(delays) * 0.99) - 1]
    finally:
        cluster.stop()


def _ts(value: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(value).timestamp()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--latency-samples", type=int, default=200)
    parser.add_argument("--peers", default="huey", help="'' to leave Huey out")
    args = parser.parse_args()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name in ("raw", "w1", "w2", "lat", "d1", "d2", "huey1", "huey2"):
            (root / name).mkdir()
        raw = raw_ceiling(args.tasks, root / "raw")
        one = genqueue_throughput(args.tasks, 1, root / "w1")
        two = genqueue_throughput(args.tasks, 2, root / "w2")
        p50, p99 = submit_to_start(args.latency_samples, root / "lat")
        rows.append(("raw sqlite3 ceiling", 1, raw, float("nan")))
        for procs in (1, 2):
            rate, enqueue = genqueue_drain(args.tasks, procs, root / f"d{procs}")
            rows.append(("genqueue (pre-queued)", procs, rate, enqueue))
            for peer in [p for p in args.peers.split(",") if p]:
                env = {"BENCH_HUEY_DB": str(root / f"huey{procs}" / "huey.db")}
                result = peer_run(peer, args.tasks, procs, env, prequeued=True)
                rows.append((peer, procs, result["tasks_per_s"], result["enqueue_per_s"]))
    figures = {
        "tasks": args.tasks,
        "raw_sqlite_ceiling_tasks_per_s": round(raw, 1),
        "genqueue_1_worker_tasks_per_s": round(one, 1),
        "genqueue_2_workers_tasks_per_s": round(two, 1),
        "ratio_1_worker_to_ceiling": round(one / raw, 3),
        "ratio_2_workers_to_ceiling": round(two / raw, 3),
        "ratio_2_workers_to_1": round(two / one, 3),
        "submit_to_start_p50_ms": round(p50 * 1000, 2),
        "submit_to_start_p99_ms": round(p99 * 1000, 2),
    }
    width = max(map(len, figures))
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}")
    print(json.dumps(figures))
    print()
    print_table(rows, raw, ["genqueue (pre-queued)"], args.peers.split(","))


if __name__ == "__main__":
    main()
