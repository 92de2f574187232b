"""procrastinate: ``procrastinate --app=bench.peer_apps.procrastinate_app.app worker``.

It lives in a database of its own, BENCH_PROCRASTINATE_DSN (bench/amqp_peers.py makes and
drops it); ``prepare`` applies procrastinate's schema there before the workers start.
"""

from __future__ import annotations

import os

import procrastinate
import redis.asyncio as aioredis

from bench.peer_apps.common import DONE_KEY, URL

DSN = os.environ.get(
    "BENCH_PROCRASTINATE_DSN", "postgresql://postgres@127.0.0.1:5432/gqbench_procrastinate"
)
app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=DSN))
_done: aioredis.Redis | None = None


@app.task(name="noop")
async def noop() -> None:
    global _done
    if _done is None:  # made in the worker's own event loop
        _done = aioredis.Redis.from_url(URL)
    await _done.incr(DONE_KEY)


def prepare() -> None:
    with app.open():
        app.schema_manager.apply_schema()


def enqueue(n: int) -> None:
    with app.open():
        for start in range(0, n, 500):
            noop.batch_defer(*([{}] * min(500, n - start)))
