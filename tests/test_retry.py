"""RetryPolicy: exponential backoff with equal jitter."""

from __future__ import annotations

import random

import pytest

from genqueue.retry import RetryPolicy


def test_backoff_doubles_until_the_cap() -> None:
    policy = RetryPolicy(max_attempts=10, base_delay_s=1.0, max_delay_s=5.0)
    assert [policy.cap_s(n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_delay_is_jittered_between_half_and_full_cap() -> None:
    policy = RetryPolicy(max_attempts=10, base_delay_s=1.0, max_delay_s=60.0)
    rng = random.Random(7)
    delays = [policy.delay_s(3, rng) for _ in range(200)]
    assert all(2.0 <= d <= 4.0 for d in delays)
    assert max(delays) - min(delays) > 1.0  # spread out, not one value


def test_allows_another_counts_every_run() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert [policy.allows_another(n) for n in (1, 2, 3)] == [True, True, False]


@pytest.mark.parametrize("kwargs", [{"max_attempts": 0}, {"base_delay_s": 5, "max_delay_s": 1}])
def test_nonsense_policies_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
