"""Warm-model affinity: model loads and total time with affinity against without.

    python -m bench.affinity [--tasks 400] [--load-s 2] [--backend sqlite]

A synthetic kind (``tests.model_kinds``: ``--load-s`` of load per model, 20 ms per task), 4
models, 2 workers (1 slot each) that hold 2 models each; ``--tasks`` tasks of random models
submitted at once, then drained. "Without" is the same run with the affinity wait at 0 (each
worker takes the next task in fair order, whatever it holds).
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import httpx

from tests.helpers import Cluster, wait_until
from tests.model_kinds import QUEUE, loads

KINDS = "tests.model_kinds"
MODELS = ["m1", "m2", "m3", "m4"]


def run(tasks: int, load_s: float, backend: str, wait_s: float) -> tuple[int, float]:
    """Model loads and seconds from the first submit to the last finish."""
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "models.log"
        cluster = Cluster(
            Path(folder),
            backend=backend,
            extra_env={
                "GENQUEUE_TEST_MODEL_LOAD_S": str(load_s),
                "GENQUEUE_TEST_MODEL_LOG": str(log),
                "GENQUEUE_WORKER__AFFINITY_WAIT_S": str(wait_s),
                "GENQUEUE_WORKER__WARM_MODELS": "2",
                "GENQUEUE_WORKER__PREFETCH": "0",
            },
        )
        try:
            cluster.start_api(["--kinds", KINDS])
            for name in ("a", "b"):
                cluster.start_worker(name, concurrency=1, queues=QUEUE, kinds=KINDS)
            wait_until(lambda: cluster.online_workers() == 2, 30, 0.1, "two workers")
            pick = random.Random(7)
            body = [
                {"kind": "test.model", "payload": {"model": pick.choice(MODELS), "n": n}}
                for n in range(tasks)
            ]
            http = httpx.Client(base_url=cluster.url, timeout=30)
            started = time.monotonic()
            batch = http.post("/v1/batches", json={"tasks": body}).json()["id"]
            wait_until(
                lambda: http.get(f"/v1/batches/{batch}").json()["finished"], 1800, 0.1, "drain"
            )
            took = time.monotonic() - started
            counts = http.get(f"/v1/batches/{batch}").json()["counts"]
            assert counts.get("succeeded") == tasks, counts
            return len(loads(log)), took
        finally:
            cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=400)
    parser.add_argument("--load-s", type=float, default=2.0)
    parser.add_argument("--backend", default="sqlite")
    parser.add_argument("--wait-s", type=float, default=5.0, help="the affinity wait")
    args = parser.parse_args()
    print(f"{args.tasks} tasks, 4 models, {args.load_s:g} s per load, 2 workers x 2 models")
    print(f"{'':18} {'loads':>6} {'seconds':>8}")
    results = {}
    for label, wait_s in (("without affinity", 0.0), ("with affinity", args.wait_s)):
        loaded, took = run(args.tasks, args.load_s, args.backend, wait_s)
        results[label] = (loaded, took)
        print(f"{label:18} {loaded:6d} {took:8.1f}")
    (loads_off, s_off), (loads_on, s_on) = results.values()
    print(f"affinity: {loads_off / max(1, loads_on):.1f}x fewer loads, {s_off / s_on:.1f}x faster")


if __name__ == "__main__":
    main()
