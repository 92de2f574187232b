"""Delayed, scheduled and deadline tasks in the store: not_before, start_by and the expired
status. Run against every store."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import timedelta

from genqueue.contracts import Claim, Store
from genqueue.models import Event, EventType, TaskFilter, TaskStatus, utcnow
from tests.contract.test_store import submit_one
from tests.helpers import let_time_pass


async def test_a_delayed_task_is_not_claimable_before_its_time(store: Store) -> None:
    at = utcnow() + timedelta(seconds=0.5)
    task_id = await submit_one(store, not_before=at)
    task = await store.get(task_id)
    assert task.not_before is not None and abs((task.not_before - at).total_seconds()) < 0.01
    assert await store.claim(task_id, "early", 30) is None
    assert (await store.get(task_id)).status == TaskStatus.QUEUED
    await let_time_pass(0.6)
    assert isinstance(await store.claim(task_id, "on-time", 30), Claim)


async def test_the_outbox_carries_the_delay_left(store: Store) -> None:
    task_id = await submit_one(store, not_before=utcnow() + timedelta(seconds=60))
    await let_time_pass(5.2)  # OUTBOX_GRACE_S: the submitter died
    [message] = await store.take_outbox(10, 30)
    assert message.task_id == task_id and 50 < message.delay_s <= 55


async def test_a_task_not_started_by_its_deadline_expires_at_claim(store: Store) -> None:
    task_id = await submit_one(store, start_by=utcnow() + timedelta(seconds=0.2))
    await let_time_pass(0.3)
    assert await store.claim(task_id, "late", 30) is None
    task = await store.get(task_id)
    assert task.status == TaskStatus.EXPIRED and task.finished_at is not None
    assert task.attempts == 0 and "start_by" in (task.error or "")
    assert await store.position(task_id) is None
    page = await store.list_tasks(TaskFilter(status=TaskStatus.EXPIRED), 10, None)
    assert [t.id for t in page.tasks] == [task_id]


async def test_the_sweep_expires_overdue_tasks_nobody_claims(store: Store) -> None:
    events = await store.watch()
    try:
        late = await submit_one(store, start_by=utcnow() + timedelta(seconds=0.2))
        timely = await submit_one(store, start_by=utcnow() + timedelta(seconds=60))
        await let_time_pass(0.3)
        await store.requeue_expired()
        assert (await store.get(late)).status == TaskStatus.EXPIRED
        assert (await store.get(timely)).status == TaskStatus.QUEUED
        seen = [e async for e in _take(events, 3)]
        assert [(e.type, e.task_id) for e in seen][-1] == (EventType.EXPIRED, late)
        [stats] = [s for s in await store.queue_stats() if s.queue == "q"]
        assert stats.counts.get(TaskStatus.EXPIRED) == 1
    finally:
        await events.aclose()


async def test_deadline_fields_are_kept(store: Store) -> None:
    start_by = utcnow() + timedelta(minutes=5)
    task_id = await submit_one(store, start_by=start_by, cancel_after_s=30.0, resource="r")
    task = await store.get(task_id)
    assert task.start_by is not None and abs((task.start_by - start_by).total_seconds()) < 0.01
    assert (task.cancel_after_s, task.resource) == (30.0, "r")


async def _take(events: AsyncGenerator[Event, None], n: int) -> AsyncGenerator[Event, None]:
    async for event in events:
        yield event
        n -= 1
        if n == 0:
            return
