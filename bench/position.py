"""Queue position and cancel stay cheap however long the queue: Redis, 1 000 vs 1 000 000.

    python -m bench.position [--big 1000000]

Fills one queue with ``--small`` and then ``--big`` queued tasks (Redis database 15, flushed),
and times ``Store.position`` and ``Store.cancel`` of random tasks in each. The figure that
matters is the ratio big/small: O(log n) keeps it near 1 (sorted-set rank), where a scan
would make it ~1000.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
import uuid

import redis.asyncio as aioredis

from genqueue.backends import open_store
from genqueue.models import NewTask
from genqueue.settings import load_settings

URL = "redis://127.0.0.1:6379/15?prefix=gqpos"


async def fill_and_time(n: int, samples: int) -> tuple[float, float]:
    flush = aioredis.Redis.from_url("redis://127.0.0.1:6379/15")
    await flush.flushdb()
    store = await open_store(URL, load_settings(store=URL, broker=URL))
    ids: list[str] = []
    for start in range(0, n, 2000):
        batch = [
            NewTask(
                id=uuid.uuid4().hex,
                kind="debug.echo",
                queue="q",
                payload={},
                priority=random.randint(0, 3),
            )
            for _ in range(min(2000, n - start))
        ]
        await store.submit(batch)
        ids.extend(t.id for t in batch)
    picks = random.sample(ids, samples)
    position_s, cancel_s = [], []
    for task_id in picks:
        t = time.perf_counter()
        await store.position(task_id)
        position_s.append(time.perf_counter() - t)
    for task_id in picks[: samples // 2]:
        t = time.perf_counter()
        await store.cancel(task_id)
        cancel_s.append(time.perf_counter() - t)
    await store.aclose()
    await flush.flushdb()
    await flush.aclose()
    return statistics.median(position_s), statistics.median(cancel_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=500)
    args = parser.parse_args()
    small = asyncio.run(fill_and_time(args.small, args.samples))
    big = asyncio.run(fill_and_time(args.big, args.samples))
    for name, i in (("position", 0), ("cancel", 1)):
        print(
            f"{name:<9} p50 with {args.small:>9,} queued: {small[i] * 1e3:7.3f} ms;"
            f" with {args.big:>9,}: {big[i] * 1e3:7.3f} ms; ratio {big[i] / small[i]:.2f}"
        )


if __name__ == "__main__":
    main()
