"""Warm-model affinity: a task goes to a worker that holds its model when one is free, and to
any worker after a short wait (``GENQUEUE_WORKER__AFFINITY_WAIT_S``), so model swaps become
rare without starving anyone.

Workers report the models they hold (``genqueue.warm``) in their heartbeats. A worker passes
over a task whose model it does not hold when another online worker holds it, or when taking
it would unload one of its own models while the line has work for them: it looks at the head
of the line (``Store.line``) and claims the first task it should take (``Store.claim``), in
fair order. Loading a new model unloads first a model another worker holds too, so workers
drift apart to hold different models. A task it passed over is its to take once it has
passed it over for the wait: the worker holding the model had that long to come for it. When
every task it looked at is passed over, its credit goes back to the broker, due when the first
of them is or sooner (``DEFER_S``: the credit may be the one the worker holding the model
needs), so the credit is never lost and the queue never stalls.

The fair order bends only where a model is warm elsewhere, and only within the first
``LOOKAHEAD`` tasks; positions stay those of the fair order.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass

from genqueue.contracts import LineEntry
from genqueue.models import WorkerInfo, WorkerStatus

LOOKAHEAD = 32  # tasks of the line a worker looks at before it gives its credit back
FORGET_AFTER_S = 600.0  # a passed-over task seen no more for this long is forgotten
# A credit given back comes again this soon at most: the worker holding the model may have
# no credit of its own left, and any consumer of the queue may get this one next.
DEFER_S = 0.25


@dataclass(frozen=True)
class Deferred:
    """Every task the worker looked at is left to a worker holding its model: give the credit
    back, due in ``retry_in_s`` (``DEFER_S`` at most)."""

    retry_in_s: float


@dataclass(frozen=True)
class Choice:
    """What to claim, in order, and when to come back if none of it can be had (None: nothing
    was passed over, so the usual claim applies)."""

    tries: list[str]
    retry_in_s: float | None


class Affinity:
    """One worker's view: the models other workers hold, and since when it has left which
    task to them."""

    def __init__(self, worker_id: str, wait_s: float, capacity: int) -> None:
        self.worker_id = worker_id
        self.wait_s = wait_s
        self.capacity = capacity
        self.others: frozenset[str] = frozenset()  # models warm on another online worker
        self._passed_since: dict[str, float] = {}

    @property
    def on(self) -> bool:
        return self.wait_s > 0

    def update(self, workers: list[WorkerInfo]) -> None:
        """From the registry: the models other online workers hold warm."""
        self.others = frozenset(
            model
            for worker in workers
            if worker.id != self.worker_id and worker.status == WorkerStatus.ONLINE
            for model in worker.models
        )

    def shared(self, mine: Collection[str]) -> set[str]:
        """Models held here that another worker holds too: the first to unload for a new one,
        so workers drift apart to hold different models."""
        return set(mine).intersection(self.others)

    def choose(
        self, line: list[LineEntry], mine: Collection[str], now: float | None = None
    ) -> Choice:
        """The tasks of ``line`` to try, in its order. Left to others, for the wait: a task
        whose model another worker holds and this one does not; and, while this worker's
        models are all it can hold and the line has work for them, a task whose model it
        would have to load in place of one of them."""
        now = time.monotonic() if now is None else now
        held = set(mine)
        busy_here = len(held) >= self.capacity and any(e.model in held for e in line)
        tries: list[str] = []
        retry_in: float | None = None
        for entry in line:
            model = entry.model
            cold_here = model is not None and model not in held
            if self.on and cold_here and (model in self.others or busy_here):
                since = self._passed_since.setdefault(entry.task_id, now)
                left = since + self.wait_s - now
                if left > 0:
                    retry_in = left if retry_in is None else min(retry_in, left)
                    continue
            tries.append(entry.task_id)
        self._forget(now)
        return Choice(tries, retry_in)

    def _forget(self, now: float) -> None:
        if len(self._passed_since) > 4 * LOOKAHEAD:
            old = now - max(FORGET_AFTER_S, 10 * self.wait_s)
            self._passed_since = {k: t for k, t in self._passed_since.items() if t > old}
