"""The outbox: every task stored as queued is owed a message until one is published."""

from __future__ import annotations

import asyncio

from genqueue.contracts import OUTBOX_GRACE_S, Message, Store
from tests.contract.test_store import lease_of, submit_one
from tests.helpers import let_time_pass


async def expire_and_requeue(store: Store, task_id: str) -> None:
    await lease_of(store, task_id, "dead", 0.05)
    await let_time_pass(0.1)
    assert [t.id for t in await store.requeue_expired()] == [task_id]


async def test_a_new_task_is_owed_a_message_after_the_grace_only(store: Store) -> None:
    task_id = await submit_one(store, priority=3)
    assert await store.take_outbox(100, 30.0) == []  # its submitter is publishing it now
    await let_time_pass(OUTBOX_GRACE_S + 0.2)  # ... and died: the relay's turn
    assert await store.take_outbox(100, 30.0) == [Message("q", task_id, 3, 0.0)]


async def test_a_requeued_task_is_owed_a_message_at_once_and_held_while_taken(
    store: Store,
) -> None:
    task_id = await submit_one(store)
    await store.clear_outbox([task_id])  # published
    await expire_and_requeue(store, task_id)
    [owed] = await store.take_outbox(100, 0.3)
    assert (owed.task_id, owed.queue) == (task_id, "q")
    assert await store.take_outbox(100, 0.3) == []  # held by the first relay
    await let_time_pass(0.4)  # which died without publishing
    assert [m.task_id for m in await store.take_outbox(100, 30.0)] == [task_id]


async def test_cleared_entries_and_entries_of_tasks_no_longer_queued_are_gone(
    store: Store,
) -> None:
    kept, cleared, claimed, cancelled = [await submit_one(store) for _ in range(4)]
    for task_id in (kept, cleared, claimed, cancelled):
        await store.clear_outbox([task_id])
        await expire_and_requeue(store, task_id)
    await store.clear_outbox([cleared, "no-such-task"])
    await lease_of(store, claimed, "w", 30.0)
    await store.cancel(cancelled)
    assert [m.task_id for m in await store.take_outbox(100, 30.0)] == [kept]
    await let_time_pass(0.1)
    await store.clear_outbox([kept])
    assert await store.take_outbox(100, 0.0) == []


async def test_relays_at_once_take_disjoint_entries(store: Store) -> None:
    ids = []
    for _ in range(20):
        ids.append(task_id := await submit_one(store))
        await store.clear_outbox([task_id])
        await lease_of(store, task_id, "dead", 0.05)
    await let_time_pass(0.1)
    await store.requeue_expired()
    taken = await asyncio.gather(*(store.take_outbox(7, 30.0) for _ in range(4)))
    flat = [m.task_id for batch in taken for m in batch]
    assert sorted(flat) == sorted(ids)  # each once, none twice
