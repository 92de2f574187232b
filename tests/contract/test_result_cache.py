"""The result cache in the Store, on every backend: ``Store.cached`` finds the newest task of
one user and kind with a cache key that succeeded within ``fresh_s``, and nothing else."""

from __future__ import annotations

import hashlib

from genqueue.contracts import Failed, Store, Succeeded
from tests.contract.test_store import lease_of, submit_one
from tests.helpers import let_time_pass


def key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


PICTURE = key("a red fox")


async def run(
    store: Store, user: str | None, cache_key: str, ok: bool = True, **fields: str
) -> str:
    task_id = await submit_one(store, user=user, cache_key=cache_key, **fields)
    lease = await lease_of(store, task_id, "w", 5.0)
    await store.finish(lease, Succeeded({"picture": task_id}) if ok else Failed("broken"))
    return task_id


async def test_a_succeeded_task_is_found_by_user_kind_and_key(store: Store) -> None:
    task_id = await run(store, "ann", PICTURE)
    hit = await store.cached("ann", "debug.echo", PICTURE, 60.0)
    assert hit is not None
    assert (hit.id, hit.result, hit.cache_key) == (task_id, {"picture": task_id}, PICTURE)
    assert (await store.get(task_id)).cache_key == PICTURE


async def test_another_user_kind_or_key_finds_nothing(store: Store) -> None:
    await run(store, "ann", PICTURE)
    assert await store.cached("bob", "debug.echo", PICTURE, 60.0) is None
    assert await store.cached(None, "debug.echo", PICTURE, 60.0) is None
    assert await store.cached("ann", "image.generate", PICTURE, 60.0) is None
    assert await store.cached("ann", "debug.echo", key("a blue fox"), 60.0) is None


async def test_tasks_with_no_user_are_their_own_pool(store: Store) -> None:
    anonymous = await run(store, None, PICTURE)
    assert await store.cached("ann", "debug.echo", PICTURE, 60.0) is None
    hit = await store.cached(None, "debug.echo", PICTURE, 60.0)
    assert hit is not None and hit.id == anonymous


async def test_failed_cancelled_and_unfinished_tasks_are_not_hits(store: Store) -> None:
    await run(store, "ann", PICTURE, ok=False)
    cancelled = await submit_one(store, user="ann", cache_key=PICTURE)
    await store.cancel(cancelled)
    running = await submit_one(store, user="ann", cache_key=PICTURE)
    await lease_of(store, running, "w", 5.0)
    await submit_one(store, user="ann", cache_key=PICTURE)  # queued
    assert await store.cached("ann", "debug.echo", PICTURE, 60.0) is None


async def test_the_newest_success_answers(store: Store) -> None:
    await run(store, "ann", PICTURE)
    newer = await run(store, "ann", PICTURE)
    await run(store, "ann", PICTURE, ok=False)  # a later failure does not hide it
    hit = await store.cached("ann", "debug.echo", PICTURE, 60.0)
    assert hit is not None and hit.id == newer


async def test_a_success_older_than_fresh_s_is_not_a_hit(store: Store) -> None:
    await run(store, "ann", PICTURE)
    await let_time_pass(0.3)
    assert await store.cached("ann", "debug.echo", PICTURE, 0.2) is None
    assert await store.cached("ann", "debug.echo", PICTURE, 60.0) is not None


async def test_a_purged_task_is_no_longer_a_hit(store: Store) -> None:
    task_id = await run(store, "ann", PICTURE)
    assert await store.purge(0.0) == [task_id]
    assert await store.cached("ann", "debug.echo", PICTURE, 3600.0) is None
