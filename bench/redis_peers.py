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
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from bench.runs import Row, genqueue_run, peer_run, print_table

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


async def genqueue_on_redis(n: int, processes: int, latency_samples: int) -> dict[str, float]:
    r = aioredis.Redis.from_url(URL)
    await r.flushdb()
    try:
        return await genqueue_run(GQ_URL, GQ_URL, n, processes, latency_samples)
    finally:
        await r.flushdb()
        await r.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description="genqueue on Redis vs the raw ceiling and peers")
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--latency-samples", type=int, default=300)
    parser.add_argument("--peers", default=",".join(PEERS))
    args = parser.parse_args()
    n = args.tasks
    rows: list[Row] = []
    ceiling = asyncio.run(raw_ceiling(n))
    rows.append(("raw redis-py ceiling", 1, ceiling, float("nan")))
    latency: dict[str, float] = {}
    for processes in (1, 2):
        gq = asyncio.run(
            genqueue_on_redis(n, processes, args.latency_samples if processes == 1 else 0)
        )
        rows.append(("genqueue", processes, gq["tasks_per_s"], gq["enqueue_per_s"]))
        latency.update({k: v for k, v in gq.items() if k.endswith("_ms")})
        for peer in [p for p in args.peers.split(",") if p]:
            result = peer_run(peer, n, processes, {"BENCH_REDIS": URL})
            rows.append((peer, processes, result["tasks_per_s"], result["enqueue_per_s"]))
    print_table(rows, ceiling, ["genqueue"], PEERS)
    print(
        f"genqueue submit-to-start: p50 {latency.get('p50_ms', 0):.2f} ms, "
        f"p99 {latency.get('p99_ms', 0):.2f} ms"
    )


if __name__ == "__main__":
    main()
