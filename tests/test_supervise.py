"""The restart arithmetic of genqueue.supervise: backoff, its reset, and how exits read."""

from __future__ import annotations

import random
import signal

from genqueue.supervise import (
    BASE_DELAY_S,
    MAX_DELAY_S,
    STABLE_S,
    describe_exit,
    next_streak,
    restart_delay_s,
)


def test_restart_delay_doubles_from_half_a_second_up_to_thirty() -> None:
    rng = random.Random(3)
    for streak, nominal in [(1, 0.5), (2, 1.0), (3, 2.0), (7, 30.0), (8, 30.0), (10_000, 30.0)]:
        delays = [restart_delay_s(streak, rng) for _ in range(100)]
        assert all(nominal / 2 <= d <= nominal for d in delays), (streak, min(delays))
    assert (BASE_DELAY_S, MAX_DELAY_S) == (0.5, 30.0)


def test_restart_delay_is_jittered() -> None:
    rng = random.Random(5)
    delays = [restart_delay_s(5, rng) for _ in range(200)]
    assert max(delays) - min(delays) > 2.0  # slots that died together spread out


def test_a_child_that_stayed_up_resets_the_backoff() -> None:
    assert next_streak(0, 0.1) == 1
    assert next_streak(4, 3.0) == 5
    assert next_streak(4, STABLE_S) == 1


def test_exits_are_named_by_code_or_signal() -> None:
    assert describe_exit(-signal.SIGKILL) == "killed by SIGKILL"
    assert describe_exit(1) == "exited with code 1"
    assert describe_exit(78).startswith("exited with code 78 (a configuration error")
