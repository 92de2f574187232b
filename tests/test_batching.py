"""The batcher on its own: batches close at max_size or after max_wait_s, wait for a slot
gathering more, and each task keeps its own result, failure and cancellation."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import BaseModel

from genqueue.kinds import Batching, Kind, TaskContext, kind
from genqueue.worker.batching import Batcher, BatchResultError
from tests.helpers import wait_for


class Item(BaseModel):
    n: int


class Ctx:
    """The little of a TaskContext a batch handler here reads."""

    def __init__(self, n: int) -> None:
        self.task_id = f"t{n}"


def make_kind(handler: Any, max_size: int = 4, max_wait_s: float = 0.05) -> Kind:
    declare = kind(
        "test.batch",
        payload=Item,
        executor="async",
        batching=Batching(max_size=max_size, max_wait_s=max_wait_s),
    )
    return declare(handler)


class Slots:
    def __init__(self, n: int = 1) -> None:
        self.semaphore = asyncio.Semaphore(n)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self.semaphore:
            yield


async def doubled(items: list[Item], contexts: list[TaskContext]) -> list[Any]:
    return [ValueError(f"bad {i.n}") if i.n < 0 else 2 * i.n for i in items]


async def run_all(batcher: Batcher, ns: list[int]) -> list[Any]:
    """Each run's (result or exception, size of its batch)."""
    sizes: dict[int, int] = {}

    def on_start(n: int) -> Any:
        return lambda size: sizes.__setitem__(n, size)

    runs = [batcher.run(Item(n=n), Ctx(n), on_start(n)) for n in ns]  # type: ignore[arg-type]
    out = await asyncio.gather(*runs, return_exceptions=True)
    return [(r, sizes.get(n)) for r, n in zip(out, ns, strict=True)]


async def joined(batcher: Batcher, n: int) -> None:
    async def gathered() -> bool:
        return len(batcher._open) == n

    await wait_for(gathered, 5, message=f"{n} runs in the open batch")


async def test_full_batches_close_at_max_size_and_the_rest_after_the_wait() -> None:
    batcher = Batcher(make_kind(doubled, max_size=4), Slots(2).slot)
    out = await run_all(batcher, list(range(10)))
    assert [r for r, _ in out] == [2 * n for n in range(10)]
    assert [size for _, size in out] == [4] * 8 + [2] * 2


async def test_a_bad_item_fails_alone_and_a_failing_call_fails_all() -> None:
    out = await run_all(Batcher(make_kind(doubled), Slots().slot), [1, -1, 3])
    assert out[0] == (2, 3) and out[2] == (6, 3)
    assert isinstance(out[1][0], ValueError) and str(out[1][0]) == "bad -1" and out[1][1] == 3

    async def broken(items: list[Item], contexts: list[TaskContext]) -> list[Any]:
        raise RuntimeError("model crashed")

    out = await run_all(Batcher(make_kind(broken), Slots().slot), [1, 2])
    assert all(isinstance(r, RuntimeError) for r, _ in out)


async def test_a_handler_returning_the_wrong_count_fails_every_task_clearly() -> None:
    async def short(items: list[Item], contexts: list[TaskContext]) -> list[Any]:
        return [1]

    out = await run_all(Batcher(make_kind(short), Slots().slot), [1, 2])
    assert all(isinstance(r, BatchResultError) and "1 results for 2" in str(r) for r, _ in out)


async def test_a_run_cancelled_while_it_waits_leaves_the_batch() -> None:
    seen: list[list[int]] = []

    async def record(items: list[Item], contexts: list[TaskContext]) -> list[Any]:
        seen.append([i.n for i in items])
        return [i.n for i in items]

    batcher = Batcher(make_kind(record, max_wait_s=0.05), Slots().slot)
    runs = [asyncio.create_task(batcher.run(Item(n=n), Ctx(n))) for n in range(3)]  # type: ignore[arg-type]
    await joined(batcher, 3)
    runs[1].cancel()
    results = await asyncio.gather(*runs, return_exceptions=True)
    assert isinstance(results[1], asyncio.CancelledError)
    assert seen == [[0, 2]] and results[0] == 0


async def test_a_batch_waiting_for_a_slot_keeps_gathering() -> None:
    slots = Slots(1)
    batcher = Batcher(make_kind(doubled, max_size=8, max_wait_s=0.01), slots.slot)
    await slots.semaphore.acquire()  # the worker's only slot is busy
    sizes: list[int] = []
    first = [
        asyncio.create_task(batcher.run(Item(n=n), Ctx(n), sizes.append))  # type: ignore[arg-type]
        for n in range(2)
    ]

    async def time_up() -> bool:
        return batcher._taker_waiting

    await wait_for(time_up, 5, message="the first batch's wait to run out")
    later = [
        asyncio.create_task(batcher.run(Item(n=n), Ctx(n), sizes.append))  # type: ignore[arg-type]
        for n in range(2, 5)
    ]
    await joined(batcher, 5)
    slots.semaphore.release()
    assert await asyncio.gather(*first, *later) == [2 * n for n in range(5)]
    assert sizes == [5] * 5  # one batch: the three that came while it waited joined it


def test_a_pool_kind_cannot_batch() -> None:
    from genqueue.errors import ConfigError

    def handler(items: list[Item], contexts: list[TaskContext]) -> list[Any]:
        return items

    with pytest.raises(ConfigError, match="batching runs on the loop or in a thread"):
        kind("test.x", payload=Item, executor="process", batching=Batching())(handler)
