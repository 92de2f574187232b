"""Retry policy: exponential backoff with jitter. Pure arithmetic, no I/O."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """How often a kind's task is tried and how long to wait between tries.

    ``max_attempts`` counts every run, the first included (1 means never retried). The delay
    before attempt n+1 is drawn from [cap/2, cap] with cap = min(max_delay_s,
    base_delay_s * 2**(n-1)): "equal jitter", so that retries spread out (no thundering herd)
    yet never come back sooner than half the nominal backoff.
    """

    max_attempts: int = 3
    base_delay_s: float = 1.0
    max_delay_s: float = 300.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if self.base_delay_s < 0 or self.max_delay_s < self.base_delay_s:
            raise ValueError("need 0 <= base_delay_s <= max_delay_s")

    def cap_s(self, attempt: int) -> float:
        """The nominal (un-jittered) backoff after ``attempt`` failed runs."""
        return min(self.max_delay_s, self.base_delay_s * 2.0 ** max(0, attempt - 1))

    def delay_s(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before the run that follows failed run number ``attempt``."""
        cap = self.cap_s(attempt)
        return cap / 2 + (rng or random).uniform(0.0, cap / 2)

    def allows_another(self, attempts: int) -> bool:
        """Whether a task that has run ``attempts`` times may run again."""
        return attempts < self.max_attempts


NO_RETRY = RetryPolicy(max_attempts=1, base_delay_s=0.0, max_delay_s=0.0)


# Waiting out a backend outage (the worker's probes, the sweeper's patience after one): short
# first pauses so a blip costs little, capped low so a returning backend is seen within seconds.
OUTAGE_BACKOFF = RetryPolicy(max_attempts=1, base_delay_s=0.2, max_delay_s=5.0)
