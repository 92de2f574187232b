"""The Store contract, run against every backend."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator
from datetime import timedelta

import pytest

from genqueue.contracts import Cancelled, Claim, Failed, Lease, Requeue, Store, Succeeded
from genqueue.errors import EventsExpiredError, LeaseLostError, TaskNotFoundError
from genqueue.events import event_order
from genqueue.models import (
    Batch,
    Event,
    EventType,
    NewTask,
    Progress,
    TaskFilter,
    TaskStatus,
    WorkerInfo,
    WorkerStatus,
    utcnow,
)
from tests.helpers import wait_for, worker_info


def new_task(**fields: object) -> NewTask:
    values: dict[str, object] = {
        "id": uuid.uuid4().hex,
        "kind": "debug.echo",
        "queue": "q",
        "payload": {"n": 1},
        "max_attempts": 3,
        **fields,
    }
    return NewTask.model_validate(values)


async def lease_of(store: Store, task_id: str, worker_id: str, lease_s: float) -> Lease:
    """Claim a task that must be claimable, and return the lease."""
    claim = await store.claim(task_id, worker_id, lease_s)
    assert isinstance(claim, Claim), f"{task_id} was not claimable: {claim}"
    assert claim.task.status == TaskStatus.RUNNING and claim.task.worker_id == worker_id
    return claim.lease


async def submit_one(store: Store, **fields: object) -> str:
    [(task, created)] = await store.submit([new_task(**fields)])
    assert created
    return task.id


async def test_submit_then_get_returns_the_queued_task(store: Store) -> None:
    task_id = await submit_one(store, user="ann", priority=5)
    task = await store.get(task_id)
    assert task.status == TaskStatus.QUEUED
    assert (task.user, task.priority, task.payload, task.attempts) == ("ann", 5, {"n": 1}, 0)


async def test_get_unknown_task_raises_not_found(store: Store) -> None:
    with pytest.raises(TaskNotFoundError):
        await store.get("nope")


async def test_same_idempotency_key_returns_the_first_task(store: Store) -> None:
    [(first, created_1)] = await store.submit([new_task(idempotency_key="k1")])
    [(second, created_2)] = await store.submit([new_task(idempotency_key="k1")])
    assert (created_1, created_2) == (True, False)
    assert second.id == first.id


async def test_position_orders_by_priority_then_age(store: Store) -> None:
    low = await submit_one(store)
    low2 = await submit_one(store)
    high = await submit_one(store, priority=10)
    other_queue = await submit_one(store, queue="elsewhere")
    assert [await store.position(t) for t in (high, low, low2)] == [1, 2, 3]
    assert await store.position(other_queue) == 1


async def test_claim_is_exclusive_under_concurrency(store: Store) -> None:
    task_id = await submit_one(store)
    claims = await asyncio.gather(*(store.claim(task_id, f"w{i}", 5.0) for i in range(8)))
    winners = [claim for claim in claims if isinstance(claim, Claim)]
    assert len(winners) == 1
    task = await store.get(task_id)
    assert (task.status, task.attempts, task.worker_id) == (
        TaskStatus.RUNNING,
        1,
        winners[0].lease.worker_id,
    )
    assert winners[0].task == task
    assert await store.position(task_id) is None


async def test_finish_records_result_once(store: Store) -> None:
    task_id = await submit_one(store)
    lease = await lease_of(store, task_id, "w", 5.0)
    done = await store.finish(lease, Succeeded({"ok": True}))
    assert (done.status, done.result) == (TaskStatus.SUCCEEDED, {"ok": True})
    with pytest.raises(LeaseLostError):
        await store.finish(lease, Succeeded({"ok": False}))
    assert (await store.get(task_id)).result == {"ok": True}


async def test_requeue_delays_the_next_claim(store: Store) -> None:
    task_id = await submit_one(store)
    lease = await lease_of(store, task_id, "w", 5.0)
    task = await store.finish(lease, Requeue(delay_s=30.0, error="boom"))
    assert (task.status, task.error, task.attempts) == (TaskStatus.QUEUED, "boom", 1)
    assert await store.claim(task_id, "w", 5.0) is None  # not due for 30 s


async def test_refunded_requeue_does_not_spend_an_attempt(store: Store) -> None:
    task_id = await submit_one(store)
    lease = await lease_of(store, task_id, "w", 5.0)
    task = await store.finish(lease, Requeue(delay_s=0.0, refund=True))
    assert task.attempts == 0


async def test_failed_and_cancelled_outcomes_are_final(store: Store) -> None:
    for outcome, status in ((Failed("x"), TaskStatus.FAILED), (Cancelled(), TaskStatus.CANCELLED)):
        task_id = await submit_one(store)
        lease = await lease_of(store, task_id, "w", 5.0)
        task = await store.finish(lease, outcome)
        assert task.status == status and task.finished_at is not None
        assert await store.claim(task_id, "w", 5.0) is None


async def test_cancel_queued_task_means_it_never_starts(store: Store) -> None:
    task_id = await submit_one(store)
    assert (await store.cancel(task_id)).status == TaskStatus.CANCELLED
    assert await store.claim(task_id, "w", 5.0) is None
    assert (await store.cancel(task_id)).status == TaskStatus.CANCELLED  # idempotent


async def test_cancel_running_task_is_seen_on_renew(store: Store) -> None:
    task_id = await submit_one(store)
    lease = await lease_of(store, task_id, "w", 5.0)
    task = await store.cancel(task_id)
    assert task.status == TaskStatus.RUNNING and task.cancel_requested
    renewed = await store.renew(lease, 5.0)
    assert renewed.cancel_requested


async def test_progress_is_recorded_and_fenced(store: Store) -> None:
    task_id = await submit_one(store)
    lease = await lease_of(store, task_id, "w", 5.0)
    await store.set_progress(lease, Progress(fraction=0.5, message="half"))
    assert (await store.get(task_id)).progress == Progress(fraction=0.5, message="half")
    await store.finish(lease, Succeeded({}))
    with pytest.raises(LeaseLostError):
        await store.set_progress(lease, Progress(fraction=0.9))


async def test_batch_counts_and_cancel(store: Store) -> None:
    batch = Batch(id=uuid.uuid4().hex, user=None, created_at=utcnow(), size=3)
    tasks = [new_task(batch_id=batch.id) for _ in range(3)]
    await store.submit(tasks, batch=batch)
    lease = await lease_of(store, tasks[0].id, "w", 5.0)
    await store.finish(lease, Succeeded({}))
    counts = (await store.get_batch(batch.id)).counts
    assert counts == {TaskStatus.SUCCEEDED: 1, TaskStatus.QUEUED: 2}
    cancelled = await store.cancel_batch(batch.id)
    assert cancelled.counts == {TaskStatus.SUCCEEDED: 1, TaskStatus.CANCELLED: 2}
    assert cancelled.finished


async def test_batches_list_newest_first_by_user_with_counts(store: Store) -> None:
    start = utcnow()
    made: list[Batch] = []
    for i, user in enumerate(["ann", "bob", "ann", "ann", None]):
        batch = Batch(
            id=uuid.uuid4().hex, user=user, created_at=start + timedelta(seconds=i), size=2
        )
        await store.submit([new_task(batch_id=batch.id, user=user) for _ in range(2)], batch=batch)
        made.append(batch)
    await store.cancel_batch(made[3].id)
    first = await store.list_batches("ann", 2, None)
    assert [b.id for b in first.batches] == [made[3].id, made[2].id]
    assert first.batches[0].counts == {TaskStatus.CANCELLED: 2}
    assert first.batches[1].counts == {TaskStatus.QUEUED: 2} and first.next_cursor is not None
    rest = await store.list_batches("ann", 2, first.next_cursor)
    assert [b.id for b in rest.batches] == [made[0].id] and rest.next_cursor is None
    everyone = await store.list_batches(None, 10, None)
    assert [b.id for b in everyone.batches] == [b.id for b in reversed(made)]
    assert (await store.list_batches("nobody", 10, None)).batches == []
    assert (await store.list_batches(None, 10, "no-such-batch")).batches == []


async def test_list_filters_and_paginates_newest_first(store: Store) -> None:
    ids = [await submit_one(store, user="pat") for _ in range(5)]
    await submit_one(store, user="someone-else")
    first = await store.list_tasks(TaskFilter(user="pat"), 2, None)
    assert [t.id for t in first.tasks] == ids[::-1][:2]
    assert first.next_cursor is not None
    rest = await store.list_tasks(TaskFilter(user="pat"), 10, first.next_cursor)
    assert [t.id for t in rest.tasks] == ids[::-1][2:]
    assert rest.next_cursor is None


async def test_watch_sees_events_in_order(store: Store) -> None:
    feed = await store.watch()
    task_id = await submit_one(store)
    lease = await lease_of(store, task_id, "w", 5.0)
    await store.finish(lease, Succeeded({}))
    events: list[Event] = []
    while len(events) < 3:
        events.append(await asyncio.wait_for(anext(feed), 5))
    await feed.aclose()
    assert [e.type for e in events] == [EventType.QUEUED, EventType.STARTED, EventType.SUCCEEDED]
    assert {e.task_id for e in events} == {task_id}


async def next_events(feed: AsyncGenerator[Event, None], n: int) -> list[Event]:
    return [await asyncio.wait_for(anext(feed), 5) for _ in range(n)]


async def test_watch_after_an_id_replays_what_followed_then_goes_live(store: Store) -> None:
    feed = await store.watch()
    first, second = await submit_one(store), await submit_one(store)
    seen = await next_events(feed, 2)
    await feed.aclose()
    # Committed while nobody watches: the claim and finish of the first task.
    lease = await lease_of(store, first, "w", 5.0)
    await store.finish(lease, Succeeded({}))

    resumed = await store.watch(after=seen[0].id)
    replayed = await next_events(resumed, 3)
    later = await submit_one(store)
    live = await next_events(resumed, 1)
    await resumed.aclose()
    assert [(e.type, e.task_id) for e in replayed + live] == [
        (EventType.QUEUED, second),
        (EventType.STARTED, first),
        (EventType.SUCCEEDED, first),
        (EventType.QUEUED, later),
    ]
    assert replayed[0].id == seen[1].id  # the same event, not a copy
    ids = [e.id for e in seen[:1] + replayed + live]
    assert sorted(ids, key=event_order) == ids and len(set(ids)) == len(ids)


async def test_watch_after_an_id_the_store_does_not_keep_raises_expired(store: Store) -> None:
    feed = await store.watch()
    await submit_one(store)
    [event] = await next_events(feed, 1)
    await feed.aclose()
    *head, tail = event.id.split("-")
    unknown = "-".join([*head, str(int(tail) + 1_000_000)])  # not assigned yet
    for after in (unknown, "not-an-id"):
        with pytest.raises(EventsExpiredError):
            await store.watch(after=after)


async def test_purge_removes_only_old_finished_tasks(store: Store) -> None:
    done = await submit_one(store)
    lease = await lease_of(store, done, "w", 5.0)
    await store.finish(lease, Succeeded({}))
    waiting = await submit_one(store)
    assert await store.purge(3600.0) == []
    assert await store.purge(0.0) == [done]
    with pytest.raises(TaskNotFoundError):
        await store.get(done)
    assert (await store.get(waiting)).status == TaskStatus.QUEUED


async def test_a_handler_event_reaches_watchers_and_is_fenced_by_the_lease(store: Store) -> None:
    task_id = await submit_one(store)
    lease = await lease_of(store, task_id, "w", 5.0)
    feed = await store.watch()
    await store.add_event(lease, "diagnosis.alert", {"check": "blur", "score": 12.5})
    event = await asyncio.wait_for(anext(feed), 5)
    await feed.aclose()
    assert (event.type, event.task_id, event.status) == ("diagnosis.alert", task_id, "running")
    assert event.data == {"check": "blur", "score": 12.5}
    await store.finish(lease, Succeeded({}))
    with pytest.raises(LeaseLostError):
        await store.add_event(lease, "diagnosis.alert", {})


async def register(store: Store, worker_id: str) -> None:
    await store.register_worker(worker_info(worker_id))


async def worker_of(store: Store, worker_id: str) -> WorkerInfo:
    [worker] = [w for w in await store.list_workers() if w.id == worker_id]
    return worker


async def test_degraded_worker_shows_its_reason_until_a_clean_heartbeat(store: Store) -> None:
    await register(store, "w")
    assert (await worker_of(store, "w")).reason is None
    await store.heartbeat_worker("w", [], 1, 0, degraded="broker unreachable: refused")
    worker = await worker_of(store, "w")
    assert (worker.status, worker.reason) == (WorkerStatus.DEGRADED, "broker unreachable: refused")
    assert worker.succeeded == 1
    await store.heartbeat_worker("w", [], 2, 0)
    worker = await worker_of(store, "w")
    assert (worker.status, worker.reason, worker.succeeded) == (WorkerStatus.ONLINE, None, 2)
    await store.heartbeat_worker("w", [], 2, 0, "store unreachable")
    await store.stop_worker("w")
    worker = await worker_of(store, "w")
    assert (worker.status, worker.reason) == (WorkerStatus.STOPPED, None)


async def test_degraded_worker_is_alive_until_it_falls_silent(store: Store) -> None:
    await register(store, "w-degraded")
    await register(store, "w-stopped")
    await store.stop_worker("w-stopped")
    await store.heartbeat_worker("w-degraded", [], 0, 0, degraded="broker unreachable")
    assert await store.mark_offline(3600.0) == []
    assert await store.purge(0.0) == []  # retention takes the stopped worker, not this one
    assert [w.id for w in await store.list_workers()] == ["w-degraded"]
    assert (await worker_of(store, "w-degraded")).status == WorkerStatus.DEGRADED


async def test_silent_degraded_worker_goes_offline_and_its_tasks_are_recovered(
    store: Store,
) -> None:
    await register(store, "w-silent")
    task_id = await submit_one(store)
    await lease_of(store, task_id, "w-silent", 60.0)
    await store.heartbeat_worker("w-silent", [task_id], 0, 0, degraded="broker unreachable")

    async def offline() -> list[str]:
        return await store.mark_offline(0.05)

    assert await wait_for(offline, 5, message="the worker to be marked offline") == ["w-silent"]
    assert [t.id for t in await store.requeue_expired()] == [task_id]
    worker = await worker_of(store, "w-silent")
    assert (worker.status, worker.reason, worker.running) == (WorkerStatus.OFFLINE, None, [])
