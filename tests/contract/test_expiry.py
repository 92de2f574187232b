"""Result expiry in the Store, on every backend: retention's purge leaves a tombstone of each
task it deletes (whose it was, when its results expired), kept for ``kept_s``, so the API can
answer 410 Gone instead of 404 (genqueue/expiry.py)."""

from __future__ import annotations

from datetime import timedelta

from genqueue.contracts import Failed, Store, Succeeded
from genqueue.models import TaskStatus
from tests.contract.test_store import lease_of, submit_one
from tests.helpers import let_time_pass

# Clocks of the store and of this process differ by the store's rounding (and Redis' own
# clock): within this of each other.
CLOCK_SLACK = timedelta(milliseconds=50)


async def finished(store: Store, user: str | None = "ann", ok: bool = True) -> str:
    task_id = await submit_one(store, user=user)
    lease = await lease_of(store, task_id, "w", 5.0)
    await store.finish(lease, Succeeded({"n": 1}) if ok else Failed("broken"))
    return task_id


async def test_purge_leaves_a_tombstone_saying_whose_and_when_it_expired(store: Store) -> None:
    task_id = await finished(store, "ann")
    done = await store.get(task_id)
    assert done.finished_at is not None
    await let_time_pass(0.1)
    assert await store.purge(0.05, kept_s=60.0) == [task_id]
    tombstone = await store.tombstone(task_id)
    assert tombstone is not None
    assert (tombstone.task_id, tombstone.user) == (task_id, "ann")
    expected = done.finished_at + timedelta(seconds=0.05)
    assert abs(tombstone.expired_at - expected) < CLOCK_SLACK


async def test_every_finished_outcome_leaves_one_and_a_task_with_no_user_too(
    store: Store,
) -> None:
    failed = await finished(store, None, ok=False)
    cancelled = await submit_one(store, user="bob")
    await store.cancel(cancelled)
    assert sorted(await store.purge(0.0)) == sorted([failed, cancelled])
    anonymous = await store.tombstone(failed)
    assert anonymous is not None and anonymous.user is None
    bobs = await store.tombstone(cancelled)
    assert bobs is not None and bobs.user == "bob"


async def test_no_tombstone_for_tasks_never_purged(store: Store) -> None:
    kept = await finished(store)
    waiting = await submit_one(store, user="ann")
    assert await store.purge(3600.0) == []
    assert await store.tombstone(kept) is None
    assert await store.tombstone(waiting) is None
    assert await store.tombstone("no-such-task") is None
    assert (await store.get(waiting)).status == TaskStatus.QUEUED


async def test_kept_zero_leaves_no_tombstone(store: Store) -> None:
    task_id = await finished(store)
    assert await store.purge(0.0, kept_s=0.0) == [task_id]
    assert await store.tombstone(task_id) is None


async def test_a_tombstone_is_forgotten_once_kept_s_passed(store: Store) -> None:
    old = await finished(store)
    assert await store.purge(0.0, kept_s=0.3) == [old]
    assert await store.tombstone(old) is not None
    await let_time_pass(0.4)
    assert await store.tombstone(old) is None
    newer = await finished(store)
    assert await store.purge(0.0, kept_s=60.0) == [newer]  # a later purge forgets the old
    assert await store.tombstone(old) is None
    assert await store.tombstone(newer) is not None
