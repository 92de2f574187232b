"""StatsHistory: the in-memory ring behind /v1/stats/history, driven by a fake clock."""

from __future__ import annotations

from datetime import UTC, datetime

from genqueue.api.stats_history import SAMPLES_PER_BUCKET, StatsHistory
from genqueue.models import Event, EventType, TaskStatus

T0 = 1_800_000_000.0  # a multiple of 10: intervals start on it


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def event(type_: EventType, task_id: str, at: float) -> Event:
    status = {
        EventType.QUEUED: TaskStatus.QUEUED,
        EventType.STARTED: TaskStatus.RUNNING,
        EventType.RETRYING: TaskStatus.QUEUED,
        EventType.SUCCEEDED: TaskStatus.SUCCEEDED,
        EventType.FAILED: TaskStatus.FAILED,
        EventType.CANCELLED: TaskStatus.CANCELLED,
        EventType.EXPIRED: TaskStatus.EXPIRED,
    }[type_]
    return Event(
        id="1", type=type_, task_id=task_id, status=status, at=datetime.fromtimestamp(at, UTC)
    )


def run(history: StatsHistory, task_id: str, queued: float, started: float, done: float) -> None:
    history.record(event(EventType.QUEUED, task_id, queued))
    history.record(event(EventType.STARTED, task_id, started))
    history.record(event(EventType.SUCCEEDED, task_id, done))


def test_a_new_history_has_one_empty_interval() -> None:
    history = StatsHistory(clock=Clock())
    [point] = history.points()
    assert point.at == T0
    assert (point.succeeded, point.failed, point.cancelled) == (0, 0, 0)
    assert (point.queued, point.running, point.wait_p50_s, point.run_p50_s) == (
        None,
        None,
        None,
        None,
    )


def test_finished_tasks_are_counted_in_the_interval_they_finished_in() -> None:
    clock = Clock()
    history = StatsHistory(clock=clock)
    clock.now = T0 + 25
    run(history, "a", T0 + 1, T0 + 2, T0 + 3)
    run(history, "b", T0 + 11, T0 + 12, T0 + 13)
    history.record(event(EventType.FAILED, "c", T0 + 14))
    history.record(event(EventType.EXPIRED, "d", T0 + 15))
    history.record(event(EventType.CANCELLED, "e", T0 + 21))
    first, second, third = history.points()
    assert [p.at for p in (first, second, third)] == [T0, T0 + 10, T0 + 20]
    assert (first.succeeded, first.failed, first.cancelled) == (1, 0, 0)
    assert (second.succeeded, second.failed, second.cancelled) == (1, 1, 1)
    assert (third.succeeded, third.failed, third.cancelled) == (0, 0, 1)


def test_wait_and_run_medians_come_from_the_events_timestamps() -> None:
    clock = Clock()
    history = StatsHistory(clock=clock)
    clock.now = T0 + 9
    run(history, "a", T0, T0 + 1, T0 + 5)  # waited 1 s, ran 4 s
    run(history, "b", T0, T0 + 3, T0 + 4)  # waited 3 s, ran 1 s
    run(history, "c", T0, T0 + 2, T0 + 4)  # waited 2 s, ran 2 s
    [point] = history.points()
    assert (point.wait_p50_s, point.run_p50_s) == (2.0, 2.0)


def test_a_task_seen_only_from_its_start_gives_a_run_time_but_no_wait() -> None:
    clock = Clock()
    history = StatsHistory(clock=clock)
    clock.now = T0 + 9
    history.record(event(EventType.STARTED, "a", T0 + 1))
    history.record(event(EventType.SUCCEEDED, "a", T0 + 4))
    [point] = history.points()
    assert (point.wait_p50_s, point.run_p50_s) == (None, 3.0)


def test_a_retried_run_gives_no_run_time_for_its_failed_attempt() -> None:
    clock = Clock()
    history = StatsHistory(clock=clock)
    clock.now = T0 + 9
    history.record(event(EventType.QUEUED, "a", T0))
    history.record(event(EventType.STARTED, "a", T0 + 1))
    history.record(event(EventType.RETRYING, "a", T0 + 2))
    history.record(event(EventType.STARTED, "a", T0 + 6))
    history.record(event(EventType.SUCCEEDED, "a", T0 + 7))
    [point] = history.points()
    assert (point.wait_p50_s, point.run_p50_s, point.succeeded) == (1.0, 1.0, 1)


def test_samples_keep_the_last_queue_counts_of_their_interval() -> None:
    clock = Clock()
    history = StatsHistory(clock=clock)
    history.sample({"debug": 5}, 1)
    clock.now = T0 + 5
    history.sample({"debug": 3, "image": 1}, 2)
    clock.now = T0 + 15
    first, second = history.points()
    assert (first.queued, first.running) == ({"debug": 3, "image": 1}, 2)
    assert (second.queued, second.running) == (None, None)


def test_old_intervals_are_forgotten_and_their_slots_reused() -> None:
    clock = Clock()
    history = StatsHistory(window_s=60, bucket_s=10, clock=clock)
    history.record(event(EventType.SUCCEEDED, "a", T0 + 1))
    clock.now = T0 + 65  # six intervals later: the first slot is due again
    history.record(event(EventType.SUCCEEDED, "b", T0 + 61))
    history.record(event(EventType.SUCCEEDED, "c", T0 + 2))  # older than the window: ignored
    points = history.points()
    assert [p.at for p in points] == [T0 + 10 * i for i in range(1, 7)]
    assert [p.succeeded for p in points] == [0, 0, 0, 0, 0, 1]


def test_points_go_back_at_most_the_minutes_asked_for() -> None:
    clock = Clock()
    history = StatsHistory(clock=clock)
    clock.now = T0 + 600
    assert len(history.points(minutes=1)) == 7  # 60 s back from T0 + 600, both ends included
    assert len(history.points()) == 61  # since the history started


def test_events_stamped_ahead_of_the_clock_count_as_now() -> None:
    clock = Clock()
    history = StatsHistory(clock=clock)
    history.record(event(EventType.SUCCEEDED, "a", T0 + 30))  # a worker's clock runs fast
    assert [p.succeeded for p in history.points()] == [1]


def test_durations_are_sampled_with_bounded_memory() -> None:
    clock = Clock()
    history = StatsHistory(clock=clock)
    clock.now = T0 + 9
    for n in range(SAMPLES_PER_BUCKET * 4):
        history.record(event(EventType.STARTED, f"t{n}", T0 + 1))
        history.record(event(EventType.SUCCEEDED, f"t{n}", T0 + 3))
    [point] = history.points()
    assert (point.succeeded, point.run_p50_s) == (SAMPLES_PER_BUCKET * 4, 2.0)
    bucket = history._ring[int(T0 // 10) % len(history._ring)]
    assert bucket is not None and len(bucket.runs.values) == SAMPLES_PER_BUCKET
