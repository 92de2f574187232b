"""Store contract for one task's history (``Store.task_events``): what a task page shows of
the time before it opened, on every store."""

from __future__ import annotations

from genqueue.contracts import Store, Succeeded
from genqueue.events import event_order
from genqueue.models import EventType, Progress
from tests.contract.test_previews import preview_data
from tests.contract.test_store import lease_of, submit_one


async def test_task_events_are_the_tasks_own_oldest_first(store: Store) -> None:
    task_id = await submit_one(store)
    other_id = await submit_one(store)
    lease = await lease_of(store, task_id, "w", 10.0)
    await lease_of(store, other_id, "w", 10.0)
    await store.set_progress(lease, Progress(fraction=0.5, message="half"))
    await store.add_event(lease, "test.mark", {"n": 1})
    await store.finish(lease, Succeeded({"ok": True}))

    events = await store.task_events(task_id, 100)

    assert [e.type for e in events] == [
        EventType.QUEUED,
        EventType.STARTED,
        EventType.PROGRESS,
        "test.mark",
        EventType.SUCCEEDED,
    ]
    assert {e.task_id for e in events} == {task_id}
    keys = [event_order(e.id) for e in events]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert events[2].data["message"] == "half" and events[3].data == {"n": 1}


async def test_a_replaced_preview_appears_once_as_the_latest(store: Store) -> None:
    task_id = await submit_one(store)
    lease = await lease_of(store, task_id, "w", 10.0)
    await store.add_event(lease, EventType.PREVIEW, preview_data(1))
    await store.set_progress(lease, Progress(fraction=0.5))
    for seq in (2, 3):
        await store.add_event(lease, EventType.PREVIEW, preview_data(seq))

    events = await store.task_events(task_id, 100)

    assert [e.type for e in events] == [
        EventType.QUEUED,
        EventType.STARTED,
        EventType.PROGRESS,
        EventType.PREVIEW,
    ]
    assert events[-1].data["seq"] == 3


async def test_limit_keeps_the_newest_events(store: Store) -> None:
    task_id = await submit_one(store)
    lease = await lease_of(store, task_id, "w", 10.0)
    for step in (1, 2, 3):
        await store.set_progress(lease, Progress(fraction=step / 4, message=f"step {step}"))

    events = await store.task_events(task_id, 2)

    assert [e.data["message"] for e in events] == ["step 2", "step 3"]
    assert await store.task_events(task_id, 0) == []


async def test_an_unknown_task_has_no_events(store: Store) -> None:
    assert await store.task_events("nope", 100) == []
