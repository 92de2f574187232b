"""``client.map``'s bookkeeping: each task counted once whether the event stream or the
catch-up listing told of it, failures noticed from either, results in input order."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel

from genqueue.api.schemas import BatchPublic, TaskPublic
from genqueue.batch_follow import BatchFollower
from genqueue.errors import TaskFailedError, WaitTimeoutError
from genqueue.models import Batch, Task, TaskStatus
from genqueue.sse import ServerEvent

IDS = ["t1", "t2", "t3"]


def a_batch() -> BatchPublic:
    batch = Batch(id="b1", created_at=datetime.now(UTC), size=len(IDS))
    return BatchPublic.of(batch, IDS)


def a_task(task_id: str, status: TaskStatus, result: dict[str, Any] | None = None) -> TaskPublic:
    task = Task(
        id=task_id,
        kind="debug.echo",
        queue="debug",
        payload={},
        batch_id="b1",
        status=status,
        result=result,
        error=None if status == TaskStatus.SUCCEEDED else "it broke",
        created_at=datetime.now(UTC),
    )
    return TaskPublic.of(task)


def an_event(task_id: str, status: TaskStatus, name: str | None = None) -> ServerEvent:
    data = {"task_id": task_id, "status": status.value, "batch_id": "b1"}
    return ServerEvent(name or f"task.{status.value}", data, "7")


def test_a_task_told_of_by_both_the_listing_and_the_stream_counts_once() -> None:
    with BatchFollower(a_batch(), "debug.echo", 60) as follower:
        assert follower.stale
        follower.caught_up([a_task("t1", TaskStatus.SUCCEEDED), a_task("t2", TaskStatus.RUNNING)])
        assert not follower.stale and not follower.done
        follower.saw(an_event("t1", TaskStatus.SUCCEEDED))
        follower.saw(an_event("t2", TaskStatus.RUNNING, "task.progress"))
        follower.saw(an_event("t2", TaskStatus.SUCCEEDED))
        assert not follower.done
        follower.saw(an_event("other", TaskStatus.SUCCEEDED))  # not of this batch
        assert not follower.done
        follower.saw(an_event("t3", TaskStatus.SUCCEEDED))
        assert follower.done and follower.first_failed is None


def test_a_lagged_stream_asks_for_another_listing() -> None:
    follower = BatchFollower(a_batch(), "debug.echo", 60)
    follower.caught_up([])
    follower.saw(ServerEvent("lagged", {"message": "events were dropped"}))
    assert follower.stale


def test_the_first_failure_is_noticed_from_the_stream_or_the_listing() -> None:
    follower = BatchFollower(a_batch(), "debug.echo", 60)
    follower.caught_up([a_task("t2", TaskStatus.EXPIRED)])
    follower.saw(an_event("t3", TaskStatus.FAILED))
    assert follower.first_failed == "t2"


class Echo(BaseModel):
    i: int


def test_outcomes_come_in_input_order_typed_with_failures_in_place_or_raised() -> None:
    follower = BatchFollower(a_batch(), "debug.echo", 60)
    listed = [
        a_task("t3", TaskStatus.SUCCEEDED, {"i": 3}),
        a_task("t2", TaskStatus.CANCELLED),
        a_task("t1", TaskStatus.SUCCEEDED, {"i": 1}),
    ]
    first, failed, last = follower.outcomes(listed, Echo, return_exceptions=True)
    assert (first, last) == (Echo(i=1), Echo(i=3))
    assert isinstance(failed, TaskFailedError) and failed.task.status == TaskStatus.CANCELLED
    assert "t2 (debug.echo) cancelled: it broke" in str(failed)
    with pytest.raises(TaskFailedError) as info:
        follower.outcomes(listed, None, return_exceptions=False)
    assert info.value.task.id == "t2"


def test_the_deadline_names_the_batch_and_what_is_left() -> None:
    follower = BatchFollower(a_batch(), "debug.echo", 0.0)
    follower.caught_up([a_task("t1", TaskStatus.SUCCEEDED)])
    with pytest.raises(WaitTimeoutError, match="batch b1: 2 of 3 tasks not finished") as info:
        follower.check_deadline()
    assert info.value.batch_id == "b1"
