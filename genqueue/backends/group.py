"""Group commit: calls made while one round trip (or transaction) is under way travel together
in the next.

A worker runs many tasks at once, and each one claims, finishes and acknowledges on its own.
Sent one by one, every call pays a round trip and redis-py's per-command overhead; grouped,
a busy worker pays them once per batch while an idle one still sends each call at once (the
first call of a quiet moment goes out immediately, so latency does not grow).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

Send = Callable[[list[Sequence[Any]]], Awaitable[list[Any]]]


class GroupCall:
    """``await group(*args)`` -> this call's share of ``send([args, ...])``.

    ``send`` gets the argument tuples of every call waiting and returns one result per call,
    in order. If it raises, every call of that batch raises the same exception.
    """

    def __init__(self, send: Send, max_batch: int = 256) -> None:
        self._send = send
        self._max_batch = max_batch
        self._waiting: list[tuple[Sequence[Any], asyncio.Future[Any]]] = []
        self._sender: asyncio.Task[None] | None = None

    async def __call__(self, *args: Any) -> Any:
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append((args, done))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._drain())
        return await done

    async def _drain(self) -> None:
        while self._waiting:
            batch = self._waiting[: self._max_batch]
            del self._waiting[: self._max_batch]
            try:
                results = await self._send([args for args, _ in batch])
            except asyncio.CancelledError:
                for _, done in batch:
                    done.cancel()
                raise
            except Exception as exc:  # handed to every caller of the batch
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                continue
            for (_, done), result in zip(batch, results, strict=True):
                if not done.done():
                    done.set_result(result)
