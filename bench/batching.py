"""Dynamic batching through the queue, beside its own theory and the model called directly.

    python -m bench.batching [--tasks 2000] [--features 1000]

* synthetic: a kind costing 40 ms + 1 ms per item, one worker slot. Drain throughput batched
  (up to 32) and unbatched, as a share of the theoretical gain (32 items in 72 ms against one
  in 41 ms: 18.2x); then p50/p99 submit-to-finish latency under a steady arrival rate that
  the unbatched kind can just keep up with.
* feature.extract: ``--features`` one-image tasks drained by one worker (2 slots), batched
  and not, beside the embedder called directly on batches of 32 in this process: images/s,
  and p50 submit-to-finish latency.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from bench.batch_kinds import FIXED_S, MAX_SIZE, PER_ITEM_S
from genqueue.ml.effnet import load_embedder
from tests import feature_images as pics
from tests.helpers import Cluster, wait_until

KINDS = "bench.batch_kinds"


def _ts(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def drain(http: httpx.Client, tasks: list[dict[str, Any]]) -> tuple[float, list[float]]:
    """Submit ``tasks`` as batches of 500, wait for all; tasks/s from the first submit to the
    last finish, and each task's submit-to-finish latency."""
    started = time.time()
    batch_ids = []
    for start in range(0, len(tasks), 500):
        answer = http.post("/v1/batches", json={"tasks": tasks[start : start + 500]})
        answer.raise_for_status()
        batch_ids.append(answer.json()["id"])
    return _finish(http, batch_ids, started)


def _finish(http: httpx.Client, batch_ids: list[str], started: float) -> tuple[float, list[float]]:
    for batch_id in batch_ids:
        wait_until(
            lambda b=batch_id: http.get(f"/v1/batches/{b}").json()["finished"],  # type: ignore[misc]
            900,
            0.05,
            "a batch to finish",
        )
    done: list[dict[str, Any]] = []
    for batch_id in batch_ids:
        cursor = None
        while True:
            params: dict[str, Any] = {"batch_id": batch_id, "limit": 500}
            if cursor:
                params["cursor"] = cursor
            page = http.get("/v1/tasks", params=params).json()
            done += page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                break
    assert all(t["status"] == "succeeded" for t in done), {t["error"] for t in done}
    last = max(_ts(t["finished_at"]) for t in done)
    latencies = [_ts(t["finished_at"]) - _ts(t["created_at"]) for t in done]
    return len(done) / (last - started), latencies


def steady(http: httpx.Client, kind: str, rate: float, seconds: float) -> list[float]:
    """Submit one task every 1/rate s for ``seconds``; submit-to-finish latency of each."""
    ids = []
    begin = time.monotonic()
    for i in range(int(rate * seconds)):
        pause = begin + i / rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        answer = http.post("/v1/tasks", json={"kind": kind, "payload": {"n": i}})
        answer.raise_for_status()
        ids.append(answer.json()["id"])
    out = []
    for task_id in ids:
        task = wait_until(
            lambda t=task_id: (r := http.get(f"/v1/tasks/{t}").json())["finished_at"] and r,  # type: ignore[misc]
            120,
            0.05,
            "a task",
        )
        out.append(_ts(task["finished_at"]) - _ts(task["created_at"]))
    return out


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


def synthetic(folder: Path, tasks: int) -> None:
    cluster = Cluster(folder)
    try:
        cluster.start_api(["--kinds", KINDS])
        cluster.start_worker(queues="bench", concurrency=1, kinds=KINDS)
        with httpx.Client(base_url=cluster.url, timeout=60) as http:
            drain(http, [{"kind": "bench.synthetic", "payload": {}}] * 5)  # warm up
            one = [{"kind": "bench.synthetic", "payload": {"n": i}} for i in range(tasks // 8)]
            many = [{"kind": "bench.synthetic-batched", "payload": {"n": i}} for i in range(tasks)]
            plain_rate, _ = drain(http, one)
            batched_rate, _ = drain(http, many)
            theory = (MAX_SIZE / (FIXED_S + PER_ITEM_S * MAX_SIZE)) / (1 / (FIXED_S + PER_ITEM_S))
            gain = batched_rate / plain_rate
            print(f"synthetic ({FIXED_S * 1e3:g} ms + {PER_ITEM_S * 1e3:g} ms/item, one slot)")
            print(f"  drain: unbatched {plain_rate:.1f}/s, batched {batched_rate:.1f}/s:")
            print(f"  gain {gain:.1f}x of a theoretical {theory:.1f}x = {gain / theory:.0%}")
            rate = 0.8 / (FIXED_S + PER_ITEM_S)
            for kind in ("bench.synthetic", "bench.synthetic-batched"):
                lat = steady(http, kind, rate, 15)
                print(
                    f"  steady {rate:.0f}/s, {kind}: latency p50 {pct(lat, 0.5) * 1e3:.0f} ms,"
                    f" p99 {pct(lat, 0.99) * 1e3:.0f} ms"
                )
    finally:
        cluster.stop()


def features(folder: Path, tasks: int) -> None:
    gallery = pics.gallery(12)
    images = [pics.encode(gallery[i % len(gallery)], "PNG") for i in range(tasks)]
    embedder = load_embedder()
    decoded = [pics.gallery(12)[i % 12] for i in range(256)]
    embedder.embed(decoded[:32])
    t = time.perf_counter()
    embedder.embed(decoded, 32)
    direct = len(decoded) / (time.perf_counter() - t)
    cluster = Cluster(folder)
    try:
        cluster.start_api(["--kinds", KINDS])
        cluster.start_worker(queues="features", concurrency=2, kinds=KINDS, preload=True)
        with httpx.Client(base_url=cluster.url, timeout=60) as http:
            uploads = [http.post("/v1/uploads", content=data).json()["id"] for data in images]

            def one(kind: str, u: str) -> dict[str, Any]:
                return {"kind": kind, "payload": {"image": {"upload": u}}}

            drain(http, [one("feature.extract", u) for u in uploads[:40]])  # warm up
            rows = []
            for kind in ("bench.features-unbatched", "feature.extract"):
                rate, lat = drain(http, [one(kind, u) for u in uploads])
                rows.append((kind, rate, statistics.median(lat)))
        print(f"feature.extract, {tasks} one-image tasks, one worker (2 slots)")
        print(f"  embedder called directly on batches of 32: {direct:.1f} images/s")
        for kind, rate, p50 in rows:
            print(
                f"  {kind:<26} {rate:7.1f} images/s ({rate / direct:.0%} of direct),"
                f" latency p50 {p50:.2f} s"
            )
        print(f"  p50 latency batched / unbatched: {rows[1][2] / rows[0][2]:.2f}")
    finally:
        cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--features", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "a").mkdir()
        (Path(tmp) / "b").mkdir()
        synthetic(Path(tmp) / "a", args.tasks)
        features(Path(tmp) / "b", args.features)


if __name__ == "__main__":
    main()
