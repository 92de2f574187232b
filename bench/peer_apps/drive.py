"""Run one peer end to end: start its workers, enqueue N no-ops, wait for all N.

python -m bench.peer_apps.drive celery 5000 1      (prints one JSON line)
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import time

from bench.peer_apps.common import DONE_KEY, URL, done

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
}


def main() -> None:
    peer, n, processes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    done.flushdb()  # the bench's own database (15), never the tests'
    app = importlib.import_module(f"bench.peer_apps.{peer}_app")
    bindir = os.path.dirname(sys.executable)
    command = [os.path.join(bindir, WORKERS[peer][0]), *WORKERS[peer][1:]]
    workers = [
        subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(processes)
    ]
    try:
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
                "enqueue_per_s": n / (enqueued - started),
                "tasks_per_s": n / (finished - started),
            }
        )
    )


if __name__ == "__main__":
    main()
