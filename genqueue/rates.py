"""Submitted and finished tasks per second per queue, from successive store counts.

The store keeps counts per status, not a log of when things happened, so a rate is the change
of a count between two readings. Each API process keeps its own readings (a minute of them);
every process reads the same store, so every process reports the same rates, whoever did the
work. Retention deletes finished tasks, which can only make a rate read low, never negative.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from genqueue.models import FINISHED, QueueStats


@dataclass(frozen=True)
class QueueRates:
    submitted_per_s: float
    finished_per_s: float


@dataclass
class RateMeter:
    """Rates over the last ``window_s`` seconds of readings."""

    window_s: float = 60.0
    _readings: deque[tuple[float, dict[str, tuple[int, int]]]] = field(default_factory=deque)

    def read(self, stats: list[QueueStats], now: float | None = None) -> dict[str, QueueRates]:
        """Record a reading of the store's counts and return each queue's rates since the
        oldest reading still in the window (zero on the first reading)."""
        now = time.monotonic() if now is None else now
        totals = {
            s.queue: (sum(s.counts.values()), sum(s.counts.get(f, 0) for f in FINISHED))
            for s in stats
        }
        self._readings.append((now, totals))
        while len(self._readings) > 2 and now - self._readings[1][0] >= self.window_s:
            self._readings.popleft()
        then, before = self._readings[0]
        elapsed = now - then
        rates = {}
        for queue, (total, finished) in totals.items():
            total_then, finished_then = before.get(queue, (total, finished))
            rates[queue] = QueueRates(
                max(0.0, (total - total_then) / elapsed) if elapsed > 0 else 0.0,
                max(0.0, (finished - finished_then) / elapsed) if elapsed > 0 else 0.0,
            )
        return rates
