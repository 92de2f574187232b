"""The ETA arithmetic (genqueue/eta.py)."""

from __future__ import annotations

import pytest

from genqueue.eta import Capacity, kind_mean, queue_mean, remaining_s, rounded, start_in_s
from genqueue.models import ServiceTime


def test_a_free_slot_means_now() -> None:
    assert start_in_s(1, Capacity(slots=4, running=2, mean_s=10.0)) == 0.0
    assert start_in_s(2, Capacity(slots=4, running=2, mean_s=10.0)) == 0.0


def test_runs_before_it_end_at_slots_per_mean() -> None:
    busy = Capacity(slots=4, running=4, mean_s=10.0)
    assert start_in_s(1, busy) == pytest.approx(2.5)  # one of four runs ends
    assert start_in_s(8, busy) == pytest.approx(20.0)


def test_a_limit_narrows_the_slots() -> None:
    busy = Capacity(slots=8, running=8, mean_s=60.0)
    assert start_in_s(3, busy, permits=2) == pytest.approx(90.0)  # 3 runs at 2 per minute


def test_no_worker_or_no_measurement_gives_no_estimate() -> None:
    assert start_in_s(1, Capacity(slots=0, running=0, mean_s=1.0)) is None
    assert start_in_s(1, Capacity(slots=2, running=2, mean_s=None)) is None


def test_a_free_slot_means_now_before_any_run_was_measured() -> None:
    assert start_in_s(2, Capacity(slots=2, running=0, mean_s=None)) == 0.0


def test_queue_mean_weighs_kinds_by_runs_seen() -> None:
    times = [
        ServiceTime(queue="q", kind="fast", mean_s=1.0, deviation_s=0, samples=3),
        ServiceTime(queue="q", kind="slow", mean_s=9.0, deviation_s=0, samples=1),
        ServiceTime(queue="other", kind="x", mean_s=100.0, deviation_s=0, samples=5),
    ]
    assert queue_mean(times, "q") == pytest.approx(3.0)
    assert queue_mean(times, "empty") is None
    assert kind_mean(times, "q", "slow") == 9.0 and kind_mean(times, "q", "none") is None


def test_a_running_task_extrapolates_its_progress() -> None:
    assert remaining_s(30.0, 0.5, 100.0) == pytest.approx(30.0)
    assert remaining_s(10.0, 0.0, 25.0) == pytest.approx(15.0)  # no progress yet: the mean
    assert remaining_s(40.0, 0.0, 25.0) == 0.0
    assert remaining_s(1.0, 0.0, None) is None


def test_rounded_for_people() -> None:
    assert [rounded(s) for s in (0, 0.2, 39.2, 150, 9000)] == [
        "now",
        "in under a second",
        "in about 40 s",
        "in about 2 min",
        "in about 2.5 h",
    ]
