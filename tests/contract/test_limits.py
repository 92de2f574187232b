"""Shared limits of upstream resources: permits taken with the claim, parked tasks, cuts,
Retry-After, recovery, and permits coming back with leases. Run against every store."""

from __future__ import annotations

import asyncio
import time

import pytest

from genqueue.contracts import Claim, Lease, Requeue, Store, Succeeded, Throttled, Waiting
from genqueue.models import LimitStatus, TaskStatus
from genqueue.settings import LimitSettings
from tests.contract.test_store import lease_of, submit_one
from tests.helpers import let_time_pass

R = "upstream"
# Two permits, cut by one to a floor of one, no regrowth within a test unless asked.
TWO = LimitSettings(start=2, max=2, min=1, decrease=1, recovery_interval_s=3600, min_cut_gap_s=0)


async def limited(store: Store, n: int, policy: LimitSettings = TWO) -> list[str]:
    await store.configure_limits({R: policy})
    ids = [await submit_one(store, resource=R) for _ in range(n)]
    await store.clear_outbox(ids)  # their submitter published them
    return ids


async def limit_of(store: Store) -> LimitStatus:
    [status] = [s for s in await store.limits() if s.resource == R]
    return status


async def test_claims_beyond_the_limit_park_the_task_queued_in_its_place(store: Store) -> None:
    a, b, c = await limited(store, 3)
    first, second = await lease_of(store, a, "w1", 30), await lease_of(store, b, "w2", 30)
    assert first.epoch == second.epoch == 0
    refused = await store.claim(c, "w3", 30)
    assert isinstance(refused, Waiting) and refused.until is None
    task = await store.get(c)
    assert (task.status, task.waiting_for, task.attempts) == (TaskStatus.QUEUED, R, 0)
    assert await store.position(c) == 1
    status = await limit_of(store)
    assert (status.permits, status.in_flight, status.waiting) == (2, 2, 1)


async def test_a_finished_permit_wakes_the_first_parked_task(store: Store) -> None:
    a, b, c, d = await limited(store, 4)
    holder = await lease_of(store, a, "w1", 30)
    await lease_of(store, b, "w2", 30)
    assert isinstance(await store.claim(c, "w3", 30), Waiting)
    assert isinstance(await store.claim(d, "w3", 30), Waiting)
    assert await store.take_outbox(100, 30) == []  # parked tasks are owed nothing yet
    await store.finish(holder, Succeeded({}))
    assert [m.task_id for m in await store.take_outbox(100, 30)] == [c]
    assert (await store.get(c)).waiting_for == R  # parked until it has a permit
    assert isinstance(await store.claim(c, "w3", 30), Claim)
    assert isinstance(await store.claim(d, "w4", 30), Waiting)


async def test_unconfigured_resources_are_not_limited(store: Store) -> None:
    ids = [await submit_one(store, resource="nobody-limits-this") for _ in range(5)]
    for task_id in ids:
        await lease_of(store, task_id, "w", 30)


async def test_a_burst_of_limit_errors_under_one_limit_cuts_it_once(store: Store) -> None:
    a, b, c = await limited(store, 3, TWO.model_copy(update={"max": 3, "start": 3}))
    leases = [await lease_of(store, t, f"w{t}", 30) for t in (a, b, c)]
    for lease in leases[:2]:
        task = await store.finish(lease, Throttled(0.0, "429 Too Many Requests"))
        assert (task.status, task.attempts) == (TaskStatus.QUEUED, 0)  # attempt refunded
    status = await limit_of(store)
    assert (status.limit, status.cuts, status.throttles) == (2.0, 1, 2)
    assert [h.reason for h in status.history] == ["start", "cut"]
    # A permit taken after the cut belongs to the new epoch; its limit error cuts again.
    await store.finish(leases[2], Succeeded({}))
    fresh = await lease_of(store, a, "w", 30)
    assert fresh.epoch == 1
    await store.finish(fresh, Throttled(0.0, "429"))
    assert (await limit_of(store)).limit == 1.0


async def test_retry_after_holds_back_every_claim_until_it_passes(store: Store) -> None:
    a, b = await limited(store, 2)
    lease = await lease_of(store, a, "w1", 30)
    before = time.time()
    task = await store.finish(lease, Throttled(0.1, "RequestLimitExceeded", retry_after_s=0.6))
    assert task.not_before is not None and task.not_before.timestamp() >= before + 0.6
    refused = await store.claim(b, "w2", 30)  # a permit is free, but the resource is blocked
    assert isinstance(refused, Waiting) and refused.until is not None
    assert refused.until.timestamp() >= before + 0.6
    assert (await limit_of(store)).blocked_until is not None
    await let_time_pass(0.7)
    assert await store.wake_waiting() == 1
    assert [m.task_id for m in await store.take_outbox(100, 30)] == [b]
    assert isinstance(await store.claim(b, "w2", 30), Claim)


async def test_a_dead_workers_permit_comes_back_with_its_lease(store: Store) -> None:
    a, b, c = await limited(store, 3)
    await lease_of(store, a, "dead", 0.2)
    await lease_of(store, b, "alive", 30)
    assert isinstance(await store.claim(c, "w", 30), Waiting)
    await let_time_pass(0.3)  # the dead worker's lease runs out: its permit with it
    assert (await limit_of(store)).in_flight == 1
    assert await store.wake_waiting() == 1
    assert isinstance(await store.claim(c, "w", 30), Claim)
    await store.requeue_expired()
    assert (await store.get(a)).status == TaskStatus.QUEUED
    assert isinstance(await store.claim(a, "w", 30), Waiting)  # c and b hold both permits


async def test_a_renewed_lease_keeps_its_permit_and_epoch(store: Store) -> None:
    a, b = await limited(store, 2, TWO.model_copy(update={"max": 1, "start": 1}))
    lease = await lease_of(store, a, "w", 0.3)
    for _ in range(3):
        await let_time_pass(0.15)
        lease = await store.renew(lease, 0.3)
    assert lease.epoch == 0
    assert isinstance(await store.claim(b, "w2", 30), Waiting)


async def test_the_limit_grows_back_after_quiet_intervals_and_wakes_parked_tasks(
    store: Store,
) -> None:
    fast = TWO.model_copy(update={"max": 3, "start": 1, "recovery_interval_s": 0.3})
    a, b, c = await limited(store, 3, fast)
    await lease_of(store, a, "w1", 30)
    assert isinstance(await store.claim(b, "w2", 30), Waiting)
    assert isinstance(await store.claim(c, "w3", 30), Waiting)
    await let_time_pass(0.35)  # one quiet interval: 2 permits
    assert await store.wake_waiting() == 1
    assert await store.wake_waiting() == 1  # the same one: not claimed yet
    assert [m.task_id for m in await store.take_outbox(100, 30)] == [b]
    await let_time_pass(0.3)  # another: 3
    status = await limit_of(store)
    assert status.limit == 3.0
    assert [h.reason for h in status.history] == ["start", "grow", "grow"]


async def test_reconfiguring_keeps_the_state_and_clamps_the_limit(store: Store) -> None:
    a, _ = await limited(store, 2, TWO.model_copy(update={"max": 4, "start": 4}))
    lease = await lease_of(store, a, "w", 30)
    await store.finish(lease, Throttled(0.0, "429"))
    await store.configure_limits({R: TWO.model_copy(update={"max": 2, "start": 2})})
    await store.configure_limits({R: TWO.model_copy(update={"max": 2, "start": 2})})
    status = await limit_of(store)
    assert (status.limit, status.max, status.cuts) == (2.0, 2.0, 1)
    assert [h.reason for h in status.history] == ["start", "cut", "configure"]


async def test_a_requeue_frees_the_permit_and_wakes_a_parked_task(store: Store) -> None:
    a, b = await limited(store, 2, TWO.model_copy(update={"max": 1, "start": 1}))
    lease = await lease_of(store, a, "w", 30)
    assert isinstance(await store.claim(b, "w2", 30), Waiting)
    await store.finish(lease, Requeue(5.0, "flaky"))
    assert [m.task_id for m in await store.take_outbox(100, 30)] == [b]


async def test_concurrent_claims_never_exceed_the_permits(store: Store) -> None:
    ids = await limited(store, 12, TWO.model_copy(update={"max": 3, "start": 3}))
    results = await asyncio.gather(*(store.claim(t, f"w{t}", 30) for t in ids))
    assert sum(isinstance(r, Claim) for r in results) == 3
    assert sum(isinstance(r, Waiting) for r in results) == 9


async def test_cancelling_a_parked_task_forgets_it(store: Store) -> None:
    a, b = await limited(store, 2, TWO.model_copy(update={"max": 1, "start": 1}))
    lease = await lease_of(store, a, "w", 30)
    assert isinstance(await store.claim(b, "w2", 30), Waiting)
    assert (await store.cancel(b)).status == TaskStatus.CANCELLED
    assert (await limit_of(store)).waiting == 0
    await store.finish(lease, Succeeded({}))
    assert await store.take_outbox(100, 30) == []


@pytest.mark.parametrize("mode", ["factor"])
async def test_cuts_by_a_factor_stop_at_the_floor(store: Store, mode: str) -> None:
    policy = LimitSettings(start=10, max=10, min=4, decrease_mode=mode, factor=0.5, min_cut_gap_s=0)
    ids = await limited(store, 3, policy)
    for task_id in ids:
        lease: Lease = await lease_of(store, task_id, "w", 30)
        await store.finish(lease, Throttled(0.0, "429"))
    status = await limit_of(store)
    assert (status.limit, status.cuts) == (4.0, 2)
