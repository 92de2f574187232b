"""The store's side of submit quotas (genqueue/api/quotas.py), run against every backend: a
key's window counted atomically and only when the tasks fit, unfinished tasks per user and
queued tasks per queue counted cheaply, and the keys' own quota figures kept."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from redis.asyncio import Redis

from genqueue.backends import open_store
from genqueue.contracts import Requeue, Store, Succeeded
from genqueue.keys import hash_key, new_key
from genqueue.models import Role, utcnow
from genqueue.settings import Settings
from tests.contract.test_store import lease_of, new_task, submit_one
from tests.helpers import backend_url, forget, unique_name, wait_for


async def test_a_window_counts_tasks_until_the_limit_and_refuses_without_counting(
    store: Store,
) -> None:
    key = unique_name("k")
    first = await store.quotas.spend(key, 2, 3, 60.0)
    assert (first.admitted, first.used) == (True, 2)
    assert 0 < first.resets_in_s <= 60.0
    refused = await store.quotas.spend(key, 2, 3, 60.0)  # 2 + 2 > 3: nothing counted
    assert (refused.admitted, refused.used) == (False, 2)
    last = await store.quotas.spend(key, 1, 3, 60.0)
    assert (last.admitted, last.used) == (True, 3)
    assert not (await store.quotas.spend(key, 1, 3, 60.0)).admitted


async def test_each_key_has_a_window_of_its_own(store: Store) -> None:
    ann, bob = unique_name("k"), unique_name("k")
    assert (await store.quotas.spend(ann, 5, 5, 60.0)).admitted
    bobs = await store.quotas.spend(bob, 5, 5, 60.0)
    assert (bobs.admitted, bobs.used) == (True, 5)
    assert not (await store.quotas.spend(ann, 1, 5, 60.0)).admitted


async def test_more_tasks_than_the_limit_itself_are_refused_on_a_fresh_key(store: Store) -> None:
    key = unique_name("k")
    refused = await store.quotas.spend(key, 4, 3, 60.0)
    assert (refused.admitted, refused.used) == (False, 0)
    assert (await store.quotas.spend(key, 3, 3, 60.0)).admitted


async def test_concurrent_spends_never_take_more_places_than_the_limit(store: Store) -> None:
    key = unique_name("k")
    results = await asyncio.gather(*(store.quotas.spend(key, 1, 5, 60.0) for _ in range(20)))
    assert sum(r.admitted for r in results) == 5
    assert max(r.used for r in results) == 5


async def test_a_new_window_starts_from_zero(store: Store) -> None:
    key = unique_name("k")
    assert (await store.quotas.spend(key, 2, 2, 1.0)).admitted
    refused = await store.quotas.spend(key, 1, 2, 1.0)
    assert not refused.admitted and 0 < refused.resets_in_s <= 1.0

    async def admitted_again() -> bool:
        window = await store.quotas.spend(key, 2, 2, 1.0)
        return window.admitted and window.used == 2

    await wait_for(admitted_again, 5.0, 0.05, "the next window to admit the key")


async def test_unfinished_counts_queued_and_running_tasks_of_one_user(store: Store) -> None:
    ann = [await submit_one(store, user="ann") for _ in range(4)]
    await submit_one(store, user="bob")
    await submit_one(store)  # no user
    assert await store.quotas.count_unfinished("ann", 100) == 4
    running = await lease_of(store, ann[0], "w", 5.0)
    assert await store.quotas.count_unfinished("ann", 100) == 4  # running is still in flight
    await store.finish(running, Succeeded({"ok": True}))
    assert await store.quotas.count_unfinished("ann", 100) == 3
    await store.cancel(ann[1])
    assert await store.quotas.count_unfinished("ann", 100) == 2
    retried = await lease_of(store, ann[2], "w", 5.0)
    await store.finish(retried, Requeue(delay_s=30.0))  # queued again: in flight again
    assert await store.quotas.count_unfinished("ann", 100) == 2
    assert await store.quotas.count_unfinished("bob", 100) == 1
    assert await store.quotas.count_unfinished("nobody", 100) == 0


async def test_unfinished_is_counted_at_most_upto(store: Store) -> None:
    await store.submit([new_task(user="ann") for _ in range(5)])
    assert await store.quotas.count_unfinished("ann", 3) == 3
    assert await store.quotas.count_unfinished("ann", 5) == 5
    assert await store.quotas.count_unfinished("ann", 0) == 0


async def test_an_expired_task_is_no_longer_in_flight(store: Store) -> None:
    start_by = utcnow() + timedelta(milliseconds=300)
    await submit_one(store, user="ann", start_by=start_by)
    assert await store.quotas.count_unfinished("ann", 10) == 1

    async def expired() -> bool:
        await store.requeue_expired()
        return await store.quotas.count_unfinished("ann", 10) == 0

    await wait_for(expired, 5.0, 0.05, "the task to expire")


async def test_queued_counts_one_queue_delayed_tasks_included(store: Store) -> None:
    ids = [await submit_one(store, queue="video") for _ in range(3)]
    await submit_one(store, queue="video", not_before=utcnow() + timedelta(hours=1))
    await submit_one(store, queue="image")
    assert await store.quotas.count_queued("video", 100) == 4
    assert await store.quotas.count_queued("video", 2) == 2
    lease = await lease_of(store, ids[0], "w", 5.0)
    assert await store.quotas.count_queued("video", 100) == 3  # running is not queued
    await store.finish(lease, Succeeded({"ok": True}))
    await store.cancel(ids[1])
    assert await store.quotas.count_queued("video", 100) == 2
    assert await store.quotas.count_queued("image", 100) == 1
    assert await store.quotas.count_queued("nothing", 100) == 0


async def test_a_keys_own_quotas_are_kept_and_unset_ones_stay_unset(store: Store) -> None:
    limited, key = new_key("ann", Role.USER, "limited")
    limited = limited.model_copy(update={"tasks_per_minute": 600, "in_flight": 0})
    await store.create_key(limited, hash_key(key))
    plain, plain_key = new_key("bob", Role.OPERATOR)
    await store.create_key(plain, hash_key(plain_key))
    found = await store.key_by_hash(hash_key(key))
    assert found is not None and (found.tasks_per_minute, found.in_flight) == (600, 0)
    other = await store.key_by_hash(hash_key(plain_key))
    assert other is not None and (other.tasks_per_minute, other.in_flight) == (None, None)
    listed = {k.id: k for k in await store.list_keys()}
    assert (listed[limited.id].tasks_per_minute, listed[limited.id].in_flight) == (600, 0)
    revoked = await store.revoke_key(limited.id)
    assert (revoked.tasks_per_minute, revoked.in_flight) == (600, 0)


async def test_a_sqlite_file_from_before_quotas_gains_the_key_columns(
    tmp_path: Path, settings: Settings
) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:  # api_keys as the schema made it before quotas
        conn.execute(
            "CREATE TABLE api_keys (id TEXT PRIMARY KEY, key_hash TEXT NOT NULL UNIQUE,"
            " user TEXT NOT NULL, role TEXT NOT NULL, label TEXT, created_at REAL NOT NULL,"
            " revoked_at REAL)"
        )
    store = await open_store(f"sqlite:///{path}", settings)
    try:
        record, key = new_key("ann", Role.USER)
        await store.create_key(record.model_copy(update={"in_flight": 7}), hash_key(key))
        found = await store.key_by_hash(hash_key(key))
        assert found is not None and (found.tasks_per_minute, found.in_flight) == (None, 7)
    finally:
        await store.aclose()


@pytest.mark.redis
async def test_redis_counts_the_unfinished_tasks_of_data_stored_before_quotas(
    settings: Settings,
) -> None:
    url = backend_url("redis", settings.data_dir)
    prefix = url.rsplit("prefix=", 1)[1]
    store = await open_store(url, settings)
    try:
        await store.submit([new_task(user="ann") for _ in range(3)])
        done = await lease_of(store, (await store.submit([new_task(user="ann")]))[0][0].id, "w", 5)
        await store.finish(done, Succeeded({"ok": True}))
        redis = Redis.from_url(url.split("?")[0], decode_responses=True)
        # As a version before quotas left it: no counter, and never counted.
        await redis.delete(f"{prefix}:unfinished", f"{prefix}:upgraded:unfinished")
        await redis.aclose()
        assert await store.quotas.count_unfinished("ann", 10) == 0
    finally:
        await store.aclose()
    again = await open_store(url, settings)  # connecting brings the data up to date
    try:
        assert await again.quotas.count_unfinished("ann", 10) == 3
    finally:
        await again.aclose()
        forget(url)
