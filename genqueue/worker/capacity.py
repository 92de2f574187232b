"""Named capacities of a worker (``genqueue worker --slots gpu=1,cpu=4``): a run of a kind that
declares ``slots={"gpu": 1}`` takes one ``gpu`` for as long as it runs, so a one-GPU worker
never runs two GPU tasks at once while it runs CPU tasks beside them. These come on top of
``--concurrency``, which bounds runs of every kind."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from genqueue.errors import ConfigError

Need = Mapping[str, int]


def parse_slots(text: str) -> dict[str, int]:
    """``gpu=1,cpu=4`` -> {"gpu": 1, "cpu": 4}; a clear error for anything else."""
    slots: dict[str, int] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, sep, count = part.partition("=")
        name = name.strip()
        if not sep or not name.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(f"--slots {text!r}: write name=count, e.g. gpu=1,cpu=4")
        try:
            slots[name] = int(count)
        except ValueError:
            raise ConfigError(
                f"--slots {text!r}: {count.strip()!r} is not a whole number"
            ) from None
        if slots[name] < 1:
            raise ConfigError(f"--slots {text!r}: {name} must be at least 1")
    return slots


class Capacity:
    """What is free of each named capacity; ``take`` waits until a whole need fits at once (so
    two runs each holding part of what the other needs cannot wait on each other forever)."""

    def __init__(self, totals: Mapping[str, int]) -> None:
        self.totals = dict(totals)
        self._free = dict(totals)
        self._waiters: list[asyncio.Future[None]] = []

    def missing(self, need: Need) -> list[str]:
        """What this worker cannot give ``need`` even when idle, as ``name=count`` strings."""
        return [f"{k}={n}" for k, n in sorted(need.items()) if n > self.totals.get(k, 0)]

    def _fits(self, need: Need) -> bool:
        return all(self._free.get(k, 0) >= n for k, n in need.items())

    async def take(self, need: Need) -> None:
        if not need:
            return
        while not self._fits(need):
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                self._waiters.remove(waiter)
        for k, n in need.items():
            self._free[k] -= n

    def release(self, need: Need) -> None:
        if not need:
            return
        for k, n in need.items():
            self._free[k] += n
        for waiter in self._waiters:  # each looks again; those that fit go on
            if not waiter.done():
                waiter.set_result(None)

    def free(self) -> dict[str, int]:
        return dict(self._free)
