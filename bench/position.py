"""Queue position and cancel stay cheap however long the queue: 1 000 vs 1 000 000 queued.

    python -m bench.position [--store redis|postgres] [--big 1000000]

Fills one queue with ``--small`` and then ``--big`` queued tasks of 1 000 users (so the fair
order interleaves them) at four priorities, and times ``Store.position`` and ``Store.cancel``
of random tasks in each. Redis: database 15, flushed; PostgreSQL: schema ``gqpos`` in database
``test``, dropped. The figures that matter: the p50 at a million (target, issue 10: under
5 ms) and the ratio big/small, which O(log n) keeps near 1 where a scan makes it ~1000.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
import uuid

import asyncpg
import redis.asyncio as aioredis

from genqueue.backends import open_store
from genqueue.models import NewTask
from genqueue.settings import load_settings

URLS = {
    "redis": "redis://127.0.0.1:6379/15?prefix=gqpos",
    "postgres": "postgresql://postgres@127.0.0.1:5432/test?schema=gqpos",
}
USERS = [f"user{i}" for i in range(1000)]


async def reset(kind: str) -> None:
    """An empty store to fill."""
    if kind == "redis":
        flush = aioredis.Redis.from_url("redis://127.0.0.1:6379/15")
        await flush.flushdb(asynchronous=True)  # freed in the background: no stall
        await flush.aclose()
    else:
        conn = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/test")
        await conn.execute("DROP SCHEMA IF EXISTS gqpos CASCADE")
        await conn.close()


async def fill_and_time(kind: str, n: int, samples: int) -> tuple[float, float]:
    url = URLS[kind]
    await reset(kind)
    store = await open_store(url, load_settings(store=url, broker=url))
    ids: list[str] = []
    for start in range(0, n, 2000):
        batch = [
            NewTask(
                id=uuid.uuid4().hex,
                kind="debug.echo",
                queue="q",
                payload={},
                priority=random.randint(0, 3),
                user=random.choice(USERS),
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
    await reset(kind)
    return statistics.median(position_s), statistics.median(cancel_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--store", choices=sorted(URLS), default="redis")
    args = parser.parse_args()
    small = asyncio.run(fill_and_time(args.store, args.small, args.samples))
    big = asyncio.run(fill_and_time(args.store, args.big, args.samples))
    print(f"{args.store}, fair share on (1 000 users, 4 priorities):")
    for name, i in (("position", 0), ("cancel", 1)):
        print(
            f"{name:<9} p50 with {args.small:>9,} queued: {small[i] * 1e3:7.3f} ms;"
            f" with {args.big:>9,}: {big[i] * 1e3:7.3f} ms; ratio {big[i] / small[i]:.2f}"
        )


if __name__ == "__main__":
    main()
