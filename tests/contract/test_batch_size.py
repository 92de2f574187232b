"""Task.batch_size: the size of the batch a task's last run was part of, as the outcome given to
``Store.finish`` tells it (None: that run was not batched). Every store."""

from __future__ import annotations

import asyncio

from genqueue.contracts import Cancelled, Failed, Outcome, Requeue, Store, Succeeded, Throttled
from genqueue.models import TaskStatus
from genqueue.settings import LimitSettings
from tests.contract.test_store import lease_of, submit_one


async def test_a_batched_run_shows_the_size_of_its_batch(store: Store) -> None:
    task_id = await submit_one(store)
    assert (await store.get(task_id)).batch_size is None  # not run yet
    lease = await lease_of(store, task_id, "w", 30)
    done = await store.finish(lease, Succeeded({"ok": True}, batch_size=5))
    assert (done.status, done.batch_size) == (TaskStatus.SUCCEEDED, 5)
    assert (await store.get(task_id)).batch_size == 5


async def test_a_failed_batched_run_shows_the_size_of_its_batch(store: Store) -> None:
    task_id = await submit_one(store)
    lease = await lease_of(store, task_id, "w", 30)
    await store.finish(lease, Failed("boom", batch_size=2))
    task = await store.get(task_id)
    assert (task.status, task.error, task.batch_size) == (TaskStatus.FAILED, "boom", 2)


async def test_a_run_that_was_not_batched_shows_none(store: Store) -> None:
    task_id = await submit_one(store)
    lease = await lease_of(store, task_id, "w", 30)
    await store.finish(lease, Succeeded({}))
    assert (await store.get(task_id)).batch_size is None


async def test_the_batch_size_is_the_last_runs(store: Store) -> None:
    task_id = await submit_one(store)
    lease = await lease_of(store, task_id, "w", 30)
    retried = await store.finish(lease, Requeue(0.0, "again", batch_size=3))
    assert (retried.status, retried.batch_size) == (TaskStatus.QUEUED, 3)
    lease = await lease_of(store, task_id, "w", 30)
    assert (await store.get(task_id)).batch_size == 3  # running again: the last run's still
    await store.finish(lease, Requeue(0.0, "again", batch_size=4))
    assert (await store.get(task_id)).batch_size == 4
    lease = await lease_of(store, task_id, "w", 30)
    await store.finish(lease, Succeeded({}))  # this run was not batched
    assert (await store.get(task_id)).batch_size is None


async def test_cancelled_and_throttled_runs_leave_the_batch_size_as_it_was(store: Store) -> None:
    task_id = await submit_one(store)
    lease = await lease_of(store, task_id, "w", 30)
    await store.finish(lease, Requeue(0.0, "again", batch_size=3))
    lease = await lease_of(store, task_id, "w", 30)
    throttled = await store.finish(lease, Throttled(0.0, "429"))
    assert (throttled.status, throttled.batch_size) == (TaskStatus.QUEUED, 3)
    lease = await lease_of(store, task_id, "w", 30)
    cancelled = await store.finish(lease, Cancelled())
    assert (cancelled.status, cancelled.batch_size) == (TaskStatus.CANCELLED, 3)
    assert (await store.get(task_id)).batch_size == 3


async def test_finishes_made_together_each_keep_their_own_batch_size(store: Store) -> None:
    # The finishes of a batch reach the store at the same moment and share one round trip or
    # transaction (genqueue/backends/group.py).
    ids = [await submit_one(store) for _ in range(6)]
    leases = [await lease_of(store, task_id, "w", 30) for task_id in ids]
    outcomes: list[Outcome] = [
        Succeeded({"n": 0}, batch_size=4),
        Failed("boom", batch_size=4),
        Requeue(30.0, "again", batch_size=4),
        Succeeded({"n": 3}, batch_size=2),
        Succeeded({"n": 4}),
        Cancelled(),
    ]
    done = await asyncio.gather(
        *(store.finish(x, o) for x, o in zip(leases, outcomes, strict=True))
    )
    assert [t.batch_size for t in done] == [4, 4, 4, 2, None, None]
    assert [(await store.get(t)).batch_size for t in ids] == [4, 4, 4, 2, None, None]


async def test_tasks_holding_a_permit_record_their_batch_size(store: Store) -> None:
    # Finishes of a limited resource's tasks take a path of their own (they free a permit).
    policy = LimitSettings(start=2, max=2, min=1, recovery_interval_s=3600, min_cut_gap_s=0)
    await store.configure_limits({"upstream": policy})
    a, b = [await submit_one(store, resource="upstream") for _ in range(2)]
    lease_a, lease_b = await lease_of(store, a, "w", 30), await lease_of(store, b, "w", 30)
    assert lease_a.epoch is not None  # holds a permit
    await store.finish(lease_a, Succeeded({}, batch_size=3))
    await store.finish(lease_b, Requeue(0.0, "again", batch_size=5))
    lease_b = await lease_of(store, b, "w", 30)
    await store.finish(lease_b, Throttled(0.0, "429"))
    assert [(await store.get(t)).batch_size for t in (a, b)] == [3, 5]
