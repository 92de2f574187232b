"""Dynamic batching: claimed tasks of one kind gathered into one call of its batch handler.

Each task keeps its own claim, lease, timeout, cancellation, outcome and record: only the
handler call is shared. The worker claims tasks one by one as their messages come (a busy
worker's claims, and the finishes of a batch that ends together, share one transaction: see
``genqueue/backends/group.py``), and each claimed task's run awaits :meth:`Batcher.run`.

A batch closes when it holds ``max_size`` tasks or ``max_wait_s`` after its first task came,
whichever is first, so a lone task waits ``max_wait_s`` at most; it then runs as soon as the
worker has a slot for it (a batch takes one slot, whatever its size). A batch whose time is up
but that waits for a slot keeps taking tasks until the slot comes: holding it back to its first
few would only leave the rest waiting for the next slot. A task cancelled or
timed out while it waits leaves the batch; one cancelled while the batch runs gets its outcome
at once and its result, when it comes, is dropped. The handler returns one result or one
exception per task: one bad input fails one task, not the batch; an exception raised by the
call itself fails every task in it (each then retries under its own policy).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, cast

from genqueue.kinds import BatchHandler, Batching, Kind, TaskContext

log = logging.getLogger(__name__)

Slot = Callable[[], contextlib.AbstractAsyncContextManager[None]]


@dataclass
class _Entry:
    payload: Any
    ctx: TaskContext
    future: asyncio.Future[Any]
    on_start: Callable[[int], None]  # told the size of its batch when the batch starts


class BatchResultError(RuntimeError):
    """The batch handler broke its contract (not one result per task)."""


class Batcher:
    """Gathers runs of one batched kind and calls its handler once per batch."""

    def __init__(self, kind: Kind, slot: Slot) -> None:
        if kind.batching is None:
            raise ValueError(f"kind {kind.name!r} does not batch")
        self.kind = kind
        self.policy: Batching = kind.batching
        self._slot = slot
        self._open: list[_Entry] = []
        self._timer: asyncio.TimerHandle | None = None
        self._taker_waiting = False  # a timed-out batch waits for a slot: no clock meanwhile
        self._running: set[asyncio.Task[None]] = set()

    async def run(
        self, payload: Any, ctx: TaskContext, on_start: Callable[[int], None] = lambda _: None
    ) -> Any:
        """Add one run to the open batch and return its result; ``on_start`` learns the size
        of its batch when the batch starts. Cancelling this leaves the batch (or drops the
        result, if it runs already)."""
        loop = asyncio.get_running_loop()
        entry = _Entry(payload, ctx, loop.create_future(), on_start)
        self._open.append(entry)
        if len(self._open) >= self.policy.max_size:
            full, self._open = (
                self._open[: self.policy.max_size],
                self._open[self.policy.max_size :],
            )
            self._spawn(self._run(full))
        self._arm()
        return await entry.future

    def _arm(self) -> None:
        """Start the clock of the open batch, unless it runs or is about to."""
        if self._open and self._timer is None and not self._taker_waiting:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self.policy.max_wait_s, self._time_up)

    def _time_up(self) -> None:
        """The open batch waited long enough: it runs as soon as a slot is free, taking what
        gathered until then (a batch never waits for a slot half empty)."""
        self._timer = None
        self._taker_waiting = True
        self._spawn(self._take_when_free())

    async def _take_when_free(self) -> None:
        async with self._slot():
            self._taker_waiting = False
            batch = self._take()
            self._arm()
            await self._call_and_settle(batch)

    def _take(self) -> list[_Entry]:
        """The first ``max_size`` runs of the open batch, out of it."""
        size = self.policy.max_size
        taken, self._open = self._open[:size], self._open[size:]
        return taken

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work, name=f"genqueue-batch-{self.kind.name}")
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _run(self, entries: list[_Entry]) -> None:
        """A full batch: it runs once a slot is free."""
        async with self._slot():
            await self._call_and_settle(entries)

    async def _call_and_settle(self, entries: list[_Entry]) -> None:
        live = [e for e in entries if not e.future.done()]  # left while waiting: skipped
        if not live:
            return
        for e in live:
            e.on_start(len(live))
        try:
            results = await self._call([e.payload for e in live], [e.ctx for e in live])
            if len(results) != len(live):
                raise BatchResultError(
                    f"batch handler of {self.kind.name!r} returned {len(results)} results"
                    f" for {len(live)} tasks"
                )
        except Exception as exc:
            log.warning("batch of %d %s failed: %r", len(live), self.kind.name, exc)
            for e in live:
                if not e.future.done():
                    e.future.set_exception(exc)
            return
        for e, result in zip(live, results, strict=True):
            if e.future.done():  # cancelled or timed out while the batch ran
                continue
            if isinstance(result, BaseException):
                e.future.set_exception(result)
            else:
                e.future.set_result(result)

    async def _call(self, payloads: list[Any], contexts: list[TaskContext]) -> Sequence[Any]:
        handler = cast(BatchHandler, self.kind.handler)
        if self.kind.is_async:
            results: Sequence[Any] = await handler(payloads, contexts)
            return results
        # A thread cannot be killed: cancellation is cooperative (ctx.cancelled per task).
        return cast(Sequence[Any], await asyncio.to_thread(handler, payloads, contexts))

    async def aclose(self) -> None:
        """At shutdown: nothing new starts; runs already in a thread finish on their own."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for e in self._open:
            e.future.cancel()
        self._open = []
        for task in list(self._running):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._running, return_exceptions=True)
