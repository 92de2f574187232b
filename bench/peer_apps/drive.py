"""Run one peer end to end: start its workers, enqueue N no-ops, wait for all N.

python -m bench.peer_apps.drive celery 5000 1      (prints one JSON line)
python -m bench.peer_apps.drive huey 5000 2 prequeued

Live (the default): workers started and warmed up, then the clock runs from the first
enqueue to the last task done. Pre-queued: all N enqueued before any worker starts, then the
drain is timed from the first completion to the last (bench/peer_apps/drain.py).
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import time
from types import ModuleType

from bench.peer_apps.common import DONE_KEY, URL, done
from bench.peer_apps.drain import drain_rate

# Huey's consumer: one worker thread per consumer process (the kind that gave its best figure on
# 2 cores; see bench/RESULTS.md).
HUEY_KIND = os.environ.get("BENCH_HUEY_KIND", "thread")
HUEY_WORKERS = os.environ.get("BENCH_HUEY_WORKERS", "1")

WORKERS = {
    "celery": [
        "celery",
        "-A",
        "bench.peer_apps.celery_app",
        "worker",
        "-P",
        "solo",
        "--without-heartbeat",
        "--without-gossip",
        "--without-mingle",
        "-l",
        "WARNING",
    ],
    "dramatiq": ["dramatiq", "bench.peer_apps.dramatiq_app", "-p", "1", "-t", "8"],
    "arq": ["arq", "bench.peer_apps.arq_app.WorkerSettings"],
    "rq": [
        "rq",
        "worker",
        "--worker-class",
        "rq.worker.SimpleWorker",
        "--url",
        URL,
        "--quiet",
        "bench",
    ],
    "huey": [
        "huey_consumer",
        "bench.peer_apps.huey_app.huey",
        "-k",
        HUEY_KIND,
        "-w",
        HUEY_WORKERS,
        "--no-periodic",
        "--quiet",
    ],
    "procrastinate": [
        "procrastinate",
        "--app=bench.peer_apps.procrastinate_app.app",
        "--log-level=warning",
        "worker",
        "--concurrency",
        "16",
    ],
}


def main() -> None:
    peer, n, processes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    prequeued = sys.argv[4:] == ["prequeued"]
    done.flushdb()  # the bench's own database (15), never the tests'
    app = importlib.import_module(f"bench.peer_apps.{peer}_app")
    if hasattr(app, "prepare"):
        app.prepare()
    bindir = os.path.dirname(sys.executable)
    command = [os.path.join(bindir, WORKERS[peer][0]), *WORKERS[peer][1:]]
    if prequeued:
        started = time.perf_counter()
        app.enqueue(n)
        enqueue_per_s = n / (time.perf_counter() - started)
    # The apps are imported by module path; not every peer's command adds the folder itself.
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    workers = [
        subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(processes)
    ]
    try:
        if prequeued:
            tasks_per_s = drain_rate(lambda: int(done.get(DONE_KEY) or 0), n)
        else:
            tasks_per_s, enqueue_per_s = live_run(peer, app, n)
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        for w in workers:
            try:
                w.wait(20)
            except subprocess.TimeoutExpired:
                w.kill()
    print(
        json.dumps(
            {
                "peer": peer,
                "tasks": n,
                "processes": processes,
                "mode": "prequeued" if prequeued else "live",
                "enqueue_per_s": enqueue_per_s,
                "tasks_per_s": tasks_per_s,
            }
        )
    )


def live_run(peer: str, app: ModuleType, n: int) -> tuple[float, float]:
    """(tasks/s, enqueue/s) with the workers already running."""
    # Warm up: one task through, so every worker is connected before the clock starts.
    app.enqueue(1)
    deadline = time.monotonic() + 60
    while int(done.get(DONE_KEY) or 0) < 1:
        if time.monotonic() > deadline:
            raise SystemExit(f"{peer}: workers never ran the warm-up task")
        time.sleep(0.01)
    done.set(DONE_KEY, 0)
    started = time.perf_counter()
    app.enqueue(n)
    enqueued = time.perf_counter()
    while int(done.get(DONE_KEY) or 0) < n:
        time.sleep(0.005)
    finished = time.perf_counter()
    return n / (finished - started), n / (enqueued - started)


if __name__ == "__main__":
    main()
