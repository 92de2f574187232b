"""Leases: expiry, recovery by requeue_expired, fencing of late results, offline workers."""

from __future__ import annotations

import asyncio

import pytest

from genqueue.contracts import Store, Succeeded
from genqueue.errors import LeaseLostError
from genqueue.models import TaskStatus, WorkerStatus
from tests.contract.test_store import lease_of, submit_one
from tests.helpers import let_time_pass, wait_for, worker_info


async def test_expired_lease_is_requeued_once(store: Store) -> None:
    task_id = await submit_one(store)
    await lease_of(store, task_id, "dead", 0.05)
    await let_time_pass(0.1)  # the 50 ms lease runs out
    results = await asyncio.gather(*(store.requeue_expired() for _ in range(4)))
    assert sum(len(r) for r in results) == 1
    task = await store.get(task_id)
    assert (task.status, task.attempts) == (TaskStatus.QUEUED, 1)
    assert "lease expired" in (task.error or "")


async def test_late_result_of_a_lost_lease_is_rejected(store: Store) -> None:
    task_id = await submit_one(store)
    old = await lease_of(store, task_id, "slow", 0.05)
    await let_time_pass(0.1)
    await store.requeue_expired()
    new = await lease_of(store, task_id, "fast", 5.0)
    assert new.token != old.token
    with pytest.raises(LeaseLostError):
        await store.finish(old, Succeeded({"by": "slow"}))
    with pytest.raises(LeaseLostError):
        await store.renew(old, 5.0)
    await store.finish(new, Succeeded({"by": "fast"}))
    assert (await store.get(task_id)).result == {"by": "fast"}


async def test_renewed_lease_is_not_requeued(store: Store) -> None:
    task_id = await submit_one(store)
    lease = await lease_of(store, task_id, "alive", 0.3)
    for _ in range(4):
        await let_time_pass(0.1)
        lease = await store.renew(lease, 0.3)
        assert await store.requeue_expired() == []
    assert (await store.get(task_id)).status == TaskStatus.RUNNING


async def test_expired_lease_on_last_attempt_fails_the_task(store: Store) -> None:
    task_id = await submit_one(store, max_attempts=1)
    assert await store.claim(task_id, "dead", 0.05) is not None
    await let_time_pass(0.1)
    assert await store.requeue_expired() == []
    task = await store.get(task_id)
    assert task.status == TaskStatus.FAILED and task.finished_at is not None


async def test_silent_worker_goes_offline_and_its_tasks_are_recovered(store: Store) -> None:
    await store.register_worker(worker_info("w-silent"))
    task_id = await submit_one(store)
    assert await store.claim(task_id, "w-silent", 60.0) is not None

    async def offline() -> list[str]:
        return await store.mark_offline(0.05)

    assert await wait_for(offline, 5, message="the worker to be marked offline") == ["w-silent"]
    assert [t.id for t in await store.requeue_expired()] == [task_id]
    [worker] = [w for w in await store.list_workers() if w.id == "w-silent"]
    assert worker.status == WorkerStatus.OFFLINE
