"""Store contract for live previews: a ``task.preview`` reaches watchers as it comes, and the
event log keeps only each task's latest one, so a replay gets one picture per task."""

from __future__ import annotations

import asyncio

from genqueue.contracts import Store
from genqueue.models import Event, EventType
from tests.contract.test_store import lease_of, submit_one


def preview_data(seq: int) -> dict[str, object]:
    return {"content_type": "image/jpeg", "data": "", "width": 1, "height": 1, "seq": seq}


async def read_until(feed: object, last_type: str) -> list[Event]:
    """Events from ``feed`` up to and including the first of ``last_type``."""
    seen: list[Event] = []
    while not seen or seen[-1].type != last_type:
        seen.append(await asyncio.wait_for(anext(feed), 10))  # type: ignore[call-overload]
    return seen


async def test_previews_reach_watchers_and_only_the_latest_is_replayed(store: Store) -> None:
    task_id = await submit_one(store)
    other_id = await submit_one(store)
    lease = await lease_of(store, task_id, "w", 10.0)
    other = await lease_of(store, other_id, "w", 10.0)
    live = await store.watch()
    await store.add_event(lease, "test.mark", {})
    [mark] = await read_until(live, "test.mark")

    await store.add_event(other, EventType.PREVIEW, preview_data(1))
    [*_, first] = await read_until(live, EventType.PREVIEW)
    assert first.task_id == other_id
    for seq in (1, 2, 3):  # a watcher that keeps up sees every one
        await store.add_event(lease, EventType.PREVIEW, preview_data(seq))
        [*_, event] = await read_until(live, EventType.PREVIEW)
        assert (event.task_id, event.status, event.data["seq"]) == (task_id, "running", seq)
    await store.add_event(lease, "test.end", {})
    await read_until(live, "test.end")
    await live.aclose()

    replay = await store.watch(after=mark.id)
    replayed = await read_until(replay, "test.end")
    await replay.aclose()
    kept = [(e.task_id, e.data["seq"]) for e in replayed if e.type == EventType.PREVIEW]
    assert kept == [(other_id, 1), (task_id, 3)]
