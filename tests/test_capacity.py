"""Named worker capacities: parsing --slots, and a need taken whole or not at all."""

from __future__ import annotations

import asyncio

import pytest

from genqueue.errors import ConfigError
from genqueue.worker.capacity import Capacity, parse_slots
from tests.helpers import wait_for


def test_slots_parse_and_bad_ones_say_what_is_wrong() -> None:
    assert parse_slots("gpu=1, cpu=4") == {"gpu": 1, "cpu": 4}
    assert parse_slots("") == {}
    for bad, words in [
        ("gpu", "name=count"),
        ("gpu=x", "'x' is not a whole number"),
        ("gpu=0", "at least 1"),
        ("g p=1", "name=count"),
    ]:
        with pytest.raises(ConfigError, match=words):
            parse_slots(bad)


async def test_a_need_is_taken_whole_so_two_runs_cannot_hold_halves() -> None:
    capacity = Capacity({"gpu": 2, "cpu": 1})
    assert capacity.missing({"gpu": 3, "tpu": 1}) == ["gpu=3", "tpu=1"]
    await capacity.take({"gpu": 1})
    both = asyncio.create_task(capacity.take({"gpu": 2}))  # needs both GPUs at once
    cpu = asyncio.create_task(capacity.take({"cpu": 1}))
    await cpu  # what fits goes on
    assert not both.done() and capacity.free() == {"gpu": 1, "cpu": 0}
    capacity.release({"gpu": 1})

    async def taken() -> bool:
        return both.done()

    await wait_for(taken, 5, message="both GPUs to be taken")
    assert capacity.free() == {"gpu": 0, "cpu": 0}
