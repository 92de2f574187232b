"""RateMeter: rates are count changes over the window, never negative."""

from __future__ import annotations

from genqueue.models import QueueStats, TaskStatus
from genqueue.rates import RateMeter


def stats(queued: int, succeeded: int) -> list[QueueStats]:
    counts = {TaskStatus.QUEUED: queued, TaskStatus.SUCCEEDED: succeeded}
    return [QueueStats(queue="q", counts=counts)]


def test_first_reading_gives_zero_rates() -> None:
    rates = RateMeter().read(stats(10, 0), now=0.0)
    assert rates["q"].submitted_per_s == 0.0 and rates["q"].finished_per_s == 0.0


def test_rates_are_count_changes_per_second() -> None:
    meter = RateMeter()
    meter.read(stats(10, 0), now=0.0)
    rates = meter.read(stats(15, 20), now=10.0)  # 25 more tasks, 20 more finished
    assert rates["q"].submitted_per_s == 2.5
    assert rates["q"].finished_per_s == 2.0


def test_old_readings_leave_the_window() -> None:
    meter = RateMeter(window_s=60.0)
    meter.read(stats(0, 0), now=0.0)
    meter.read(stats(0, 600), now=60.0)
    rates = meter.read(stats(0, 660), now=120.0)  # 1/s in the last minute, 5.5/s overall
    assert rates["q"].finished_per_s == 1.0


def test_purged_tasks_never_make_a_negative_rate() -> None:
    meter = RateMeter()
    meter.read(stats(0, 100), now=0.0)
    assert meter.read(stats(0, 10), now=5.0)["q"].finished_per_s == 0.0


def test_expired_tasks_count_as_finished() -> None:
    meter = RateMeter()
    meter.read([QueueStats(queue="q", counts={TaskStatus.QUEUED: 4})], now=0.0)
    later = {TaskStatus.EXPIRED: 3, TaskStatus.CANCELLED: 1}
    rates = meter.read([QueueStats(queue="q", counts=later)], now=2.0)
    assert rates["q"].finished_per_s == 2.0 and rates["q"].submitted_per_s == 0.0
