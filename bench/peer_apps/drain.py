"""How fast a queue filled beforehand is emptied, for the pre-queued benches.

Imported from both virtualenvs (genqueue's and .venv-bench), so it uses the standard library
only. The clock runs from the first completion seen to the last, so neither a system's
process start-up nor its import time counts, only the drain itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def drain_rate(count: Callable[[], int], n: int, start_timeout_s: float = 120) -> float:
    """Tasks/s between the first poll that sees a completion and the one that sees all ``n``
    (``count`` is polled every 5 ms and must be cheap for the system being measured)."""
    deadline = time.monotonic() + start_timeout_s
    while (first := count()) < 1:
        if time.monotonic() > deadline:
            raise SystemExit("no task completed: the workers never started")
        time.sleep(0.005)
    started = time.perf_counter()
    while count() < n:
        time.sleep(0.005)
    finished = time.perf_counter()
    if first >= n:
        raise SystemExit(f"all {n} tasks finished before the first poll: raise the task count")
    return (n - first) / (finished - started)
