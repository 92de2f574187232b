"""genqueue on Redis beside a raw redis-py ceiling and the peers, measured in one run.

    make bench-redis        (or: python -m bench.redis_peers --tasks 5000)

Every figure is no-op tasks end to end: workers started and warmed up first, then the clock
runs from the first enqueue to the last task done. The peers (Celery, Dramatiq, arq, RQ) run
from their own virtualenv (.venv-bench, see bench/peers.in) on the same Redis, database 15,
which the benchmark flushes between runs: never point it at a database you use.

* raw ceiling: one asyncio process, 16 coroutines, the least Redis work that still gives
  at-least-once delivery: RPUSH (pipelined by 500), LMOVE to a processing list, SET the result,
  LREM from processing;
* genqueue: Dispatcher.submit_batch in-process by 500 (store + publish), workers with
  concurrency 16; submit-to-start latency from single submits to idle workers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from genqueue.backends import open_broker, open_store
from genqueue.dispatch import Dispatcher, TaskRequest
from genqueue.kinds import load_kinds
from genqueue.models import TaskStatus
from genqueue.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]
URL = "redis://127.0.0.1:6379/15"
GQ_URL = f"{URL}?prefix=gqbench"
PEERS = ["celery", "dramatiq", "arq", "rq"]


async def raw_ceiling(n: int) -> float:
    r: Any = aioredis.Redis.from_url(URL, decode_responses=True)
    await r.flushdb()
    started = time.perf_counter()
    for start in range(0, n, 500):
        async with r.pipeline(transaction=False) as pipe:
            for i in range(start, min(n, start + 500)):
                pipe.rpush("raw:q", i)
            await pipe.execute()

    async def consumer() -> None:
        while True:
            item = await r.lmove("raw:q", "raw:processing", "LEFT", "RIGHT")
            if item is None:
                return
            await r.set(f"raw:result:{item}", "{}")
            await r.lrem("raw:processing", 1, item)

    await asyncio.gather(*(consumer() for _ in range(16)))
    elapsed = time.perf_counter() - started
    await r.flushdb()
    await r.aclose()
    return n / elapsed


async def genqueue_run(n: int, processes: int, latency_samples: int) -> dict[str, float]:
    settings = load_settings(store=GQ_URL, broker=GQ_URL)
    r = aioredis.Redis.from_url(URL)
    await r.flushdb()
    store = await open_store(GQ_URL, settings)
    broker = await open_broker(GQ_URL, settings)
    dispatcher = Dispatcher(store, broker, load_kinds())
    env = {
        **os.environ,
        "GENQUEUE_STORE": GQ_URL,
        "GENQUEUE_BROKER": GQ_URL,
        "GENQUEUE_LOG_LEVEL": "WARNING",
    }
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "genqueue",
                "worker",
                "--queues",
                "debug",
                "--concurrency",
                "16",
                "--name",
                f"bench-{i}",
            ],
            env=env,
        )
        for i in range(processes)
    ]

    async def succeeded() -> int:
        stats = {s.queue: s.counts for s in await store.queue_stats()}
        return stats.get("debug", {}).get(TaskStatus.SUCCEEDED, 0)

    try:
        warm, _ = await dispatcher.submit(TaskRequest(kind="debug.echo"))
        while (await store.get(warm.id)).status != TaskStatus.SUCCEEDED:
            await asyncio.sleep(0.01)
        started = time.perf_counter()
        for start in range(0, n, 500):
            size = min(500, n - start)
            await dispatcher.submit_batch([TaskRequest(kind="debug.echo")] * size, None)
        enqueued = time.perf_counter()
        while await succeeded() < n + 1:
            await asyncio.sleep(0.005)
        finished = time.perf_counter()
        delays = []
        for _ in range(latency_samples):
            task, _ = await dispatcher.submit(TaskRequest(kind="debug.echo"))
            while (now := await store.get(task.id)).started_at is None:
                await asyncio.sleep(0.001)
            delays.append((now.started_at - now.created_at).total_seconds())
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            w.wait(30)
        await broker.aclose()
        await store.aclose()
        await r.flushdb()
        await r.aclose()
    delays.sort()
    figures = {"enqueue_per_s": n / (enqueued - started), "tasks_per_s": n / (finished - started)}
    if delays:
        figures["p50_ms"] = statistics.median(delays) * 1000
        figures["p99_ms"] = delays[max(0, int(len(delays) * 0.99) - 1)] * 1000
    return figures


def peer_run(peer: str, n: int, processes: int) -> dict[str, float]:
    python = ROOT / ".venv-bench" / "bin" / "python"
    out = subprocess.run(
        [str(python), "-m", "bench.peer_apps.drive", peer, str(n), str(processes)],
        cwd=ROOT,
        env={**os.environ, "BENCH_REDIS": URL},
        capture_output=True,
        text=True,
        timeout=900,
        check=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description="genqueue on Redis vs the raw ceiling and peers")
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--latency-samples", type=int, default=300)
    parser.add_argument("--peers", default=",".join(PEERS))
    args = parser.parse_args()
    n = args.tasks
    rows: list[tuple[str, int, float, float]] = []
    ceiling = asyncio.run(raw_ceiling(n))
    rows.append(("raw redis-py ceiling", 1, ceiling, float("nan")))
    latency: dict[str, float] = {}
    for processes in (1, 2):
        gq = asyncio.run(genqueue_run(n, processes, args.latency_samples if processes == 1 else 0))
        rows.append(("genqueue", processes, gq["tasks_per_s"], gq["enqueue_per_s"]))
        latency.update({k: v for k, v in gq.items() if k.endswith("_ms")})
        for peer in [p for p in args.peers.split(",") if p]:
            result = peer_run(peer, n, processes)
            rows.append((peer, processes, result["tasks_per_s"], result["enqueue_per_s"]))
    print(f"{'system':<22}{'procs':>6}{'tasks/s':>10}{'x ceiling':>11}{'enqueue/s':>11}")
    for name, procs, rate, enqueue in rows:
        print(f"{name:<22}{procs:>6}{rate:>10.0f}{rate / ceiling:>11.3f}{enqueue:>11.0f}")
    for procs in (1, 2):
        ours = next(r[2] for r in rows if r[0] == "genqueue" and r[1] == procs)
        peers = [r for r in rows if r[0] in PEERS and r[1] == procs]
        if peers:
            best = max(peers, key=lambda r: r[2])
            print(
                f"{procs} process(es): genqueue / fastest peer ({best[0]}) = "
                f"{ours / best[2]:.2f}; genqueue / ceiling = {ours / ceiling:.2f}"
            )
    print(
        f"genqueue submit-to-start: p50 {latency.get('p50_ms', 0):.2f} ms, "
        f"p99 {latency.get('p99_ms', 0):.2f} ms"
    )


if __name__ == "__main__":
    main()
