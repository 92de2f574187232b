"""arq: ``arq bench.peer_apps.arq_app.WorkerSettings``."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from arq import create_pool
from arq.connections import RedisSettings

from bench.peer_apps.common import DONE_KEY, URL


async def noop(ctx: dict[str, Any]) -> None:
    await ctx["redis"].incr(DONE_KEY)


class WorkerSettings:
    functions: ClassVar[list[Any]] = [noop]
    redis_settings = RedisSettings.from_dsn(URL)
    max_jobs = 16
    keep_result = 0


def enqueue(n: int) -> None:
    async def run() -> None:
        pool = await create_pool(RedisSettings.from_dsn(URL))
        for _ in range(n):
            await pool.enqueue_job("noop")
        await pool.aclose()

    asyncio.run(run())
