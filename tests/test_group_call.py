"""GroupCall: calls made while one is on the wire share the next round trip."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from genqueue.backends.group import GroupCall
from tests.helpers import wait_for


async def test_calls_waiting_behind_one_in_flight_go_together_in_order() -> None:
    sent: list[list[Sequence[Any]]] = []
    on_the_wire, gate = asyncio.Event(), asyncio.Event()

    async def send(calls: list[Sequence[Any]]) -> list[Any]:
        sent.append(calls)
        if len(sent) == 1:
            on_the_wire.set()
            await gate.wait()  # hold the first round trip on the wire
        return [args[0] * 10 for args in calls]

    group = GroupCall(send)
    first = asyncio.ensure_future(group(1))
    await asyncio.wait_for(on_the_wire.wait(), 5)
    others = [asyncio.ensure_future(group(n)) for n in (2, 3, 4)]

    async def all_waiting() -> bool:
        return len(group._waiting) == 3

    await wait_for(all_waiting, 5, 0.001, "the three calls to queue up behind the first")
    gate.set()
    assert await first == 10
    assert await asyncio.gather(*others) == [20, 30, 40]
    assert sent == [[(1,)], [(2,), (3,), (4,)]]


async def test_a_failed_round_trip_fails_every_call_of_its_batch_only() -> None:
    async def send(calls: list[Sequence[Any]]) -> list[Any]:
        if any(args[0] == "bad" for args in calls):
            raise ConnectionError("down")
        return ["ok"] * len(calls)

    group = GroupCall(send)
    bad = asyncio.ensure_future(group("bad"))
    with pytest.raises(ConnectionError):
        await bad
    assert await group("good") == "ok"


async def test_batches_are_capped() -> None:
    sizes: list[int] = []

    async def send(calls: list[Sequence[Any]]) -> list[Any]:
        sizes.append(len(calls))
        return [None] * len(calls)

    group = GroupCall(send, max_batch=3)
    await asyncio.gather(*(group(i) for i in range(7)))
    assert max(sizes) <= 3 and sum(sizes) == 7
