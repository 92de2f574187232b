"""Fair share inside a queue: priorities first, then start-time fair queuing across users
(weighted), age breaking ties; claim_next follows it and positions show it. Every store."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta

from genqueue.contracts import Claim, Requeue, Store, Waiting
from genqueue.models import Batch, TaskStatus, utcnow
from genqueue.settings import LimitSettings
from tests.contract.test_store import new_task
from tests.helpers import let_time_pass


async def submit(store: Store, user: str | None, n: int = 1, **fields: object) -> list[str]:
    tasks = [new_task(user=user, **fields) for _ in range(n)]
    results = await store.submit(tasks)
    return [task.id for task, _ in results]


async def next_claims(store: Store, n: int, queue: str = "q") -> list[str]:
    """Claim ``n`` tasks in the order the store hands them out; their users."""
    users = []
    for _ in range(n):
        claim = await store.claim_next(queue, "w", 30)
        assert isinstance(claim, Claim), claim
        users.append(claim.task.user or "")
    return users


async def test_a_single_task_is_not_starved_by_a_flood(store: Store) -> None:
    await submit(store, "flood", 50)
    assert await next_claims(store, 3) == ["flood"] * 3
    [single] = await submit(store, "single")
    assert await store.position(single) <= 2  # type: ignore[operator]
    assert "single" in await next_claims(store, 2)


async def test_users_alternate_and_age_orders_within_a_user(store: Store) -> None:
    a = await submit(store, "ann", 4)
    b = await submit(store, "bob", 2)
    order = []
    for _ in range(6):
        claim = await store.claim_next("q", "w", 30)
        assert isinstance(claim, Claim)
        order.append(claim.task.id)
    assert order == [a[0], b[0], a[1], b[1], a[2], a[3]]


async def test_weights_share_in_proportion(store: Store) -> None:
    await submit(store, "heavy", 30, weight=2.0)
    await submit(store, "light", 30)
    users = await next_claims(store, 24)
    assert users.count("heavy") == 16 and users.count("light") == 8


async def test_priority_comes_before_fairness(store: Store) -> None:
    await submit(store, "ann", 3)
    [urgent] = await submit(store, "ann", 1, priority=5)
    await submit(store, "bob", 1)
    first = await store.claim_next("q", "w", 30)
    assert isinstance(first, Claim) and first.task.id == urgent


async def test_positions_follow_the_fair_order(store: Store) -> None:
    a = await submit(store, "ann", 5)
    [b] = await submit(store, "bob")
    assert [await store.position(t) for t in a] == [1, 3, 4, 5, 6]
    assert await store.position(b) == 2


async def test_a_delayed_task_waits_out_of_line_and_blocks_nobody(store: Store) -> None:
    [later] = await submit(store, "ann", 1, not_before=utcnow() + timedelta(seconds=0.4))
    [now] = await submit(store, "ann")
    assert await store.position(later) is None  # not in line before its time
    claim = await store.claim_next("q", "w", 30)
    assert isinstance(claim, Claim) and claim.task.id == now
    assert await store.claim_next("q", "w", 30) is None
    await let_time_pass(0.5)
    claim = await store.claim_next("q", "w", 30)
    assert isinstance(claim, Claim) and claim.task.id == later


async def test_a_retry_goes_back_to_the_head_of_its_priority(store: Store) -> None:
    await submit(store, "ann", 3)
    await submit(store, "bob", 3)
    first = await store.claim_next("q", "w", 30)
    assert isinstance(first, Claim)
    await store.finish(first.lease, Requeue(0.0, "flaky"))
    again = await store.claim_next("q", "w", 30)
    assert isinstance(again, Claim) and again.task.id == first.task.id


async def test_claim_next_skips_expired_and_parks_tasks_without_a_permit(store: Store) -> None:
    one = LimitSettings(start=1, max=1, min=1, recovery_interval_s=3600)
    await store.configure_limits({"r": one})
    [gone] = await submit(store, "ann", 1, start_by=utcnow() + timedelta(seconds=0.2))
    [holder, parked] = await submit(store, "bob", 2, resource="r")
    [plain] = await submit(store, "bob")  # bob's third: after his two in fair order
    await let_time_pass(0.3)
    claim = await store.claim_next("q", "w", 30)  # gone expired on the way
    assert isinstance(claim, Claim) and claim.task.id == holder
    assert (await store.get(gone)).status == TaskStatus.EXPIRED
    waiting = await store.claim_next("q", "w", 30)
    assert isinstance(waiting, Waiting) and waiting.task.id == parked
    claim = await store.claim_next("q", "w", 30)  # the parked task is passed over
    assert isinstance(claim, Claim) and claim.task.id == plain
    assert await store.claim_next("q", "w", 30) is None
    await store.finish(claim.lease, Requeue(0.0, "x"))  # not its permit: no change
    plain_again = await store.claim_next("q", "w", 30)
    assert isinstance(plain_again, Claim) and plain_again.task.id == plain
    holding = await store.get(holder)
    assert holding.status == TaskStatus.RUNNING


async def test_a_parked_task_is_claimable_once_a_permit_is_free(store: Store) -> None:
    one = LimitSettings(start=1, max=1, min=1, recovery_interval_s=3600)
    await store.configure_limits({"r": one})
    [holder, parked] = await submit(store, "bob", 2, resource="r")
    first = await store.claim_next("q", "w", 30)
    assert isinstance(first, Claim) and first.task.id == holder
    assert isinstance(await store.claim_next("q", "w", 30), Waiting)
    assert await store.claim_next("q", "w", 30) is None
    await store.finish(first.lease, Requeue(30.0, "later"))
    claim = await store.claim_next("q", "w", 30)
    assert isinstance(claim, Claim) and claim.task.id == parked
    assert claim.task.waiting_for is None


async def test_queues_are_apart(store: Store) -> None:
    await submit(store, "ann", 2, queue="other")
    assert await store.claim_next("q", "w", 30) is None
    claim = await store.claim_next("other", "w", 30)
    assert isinstance(claim, Claim) and claim.task.queue == "other"


async def test_a_user_back_after_a_quiet_spell_is_neither_ahead_nor_in_debt(
    store: Store,
) -> None:
    await submit(store, "ann", 3)
    assert await next_claims(store, 3) == ["ann"] * 3  # ann's burst, served alone
    await submit(store, "bob", 3)
    [back] = await submit(store, "ann")
    assert await store.position(back) == 2


async def test_a_user_who_cancels_gets_the_share_back(store: Store) -> None:
    """Cancelling queued tasks hands back their share (F -= their increments, floored at the
    line's floor): resubmitting after a cancelled batch does not queue behind every round the
    batch would have had."""
    flood = await submit(store, "ann", 5)
    await submit(store, "bob", 5)
    for task_id in flood:
        await store.cancel(task_id)
    [back] = await submit(store, "ann")
    assert await store.position(back) == 2  # after bob's first (same tag, older), not his 5th
    batch = Batch(id=uuid.uuid4().hex, user="ann", created_at=utcnow(), size=3)
    tasks = [new_task(user="ann", batch_id=batch.id) for _ in range(3)]
    await store.submit(tasks, batch=batch)
    await store.cancel_batch(batch.id)
    [again] = await submit(store, "ann")
    assert [await store.position(t.id) for t in tasks] == [None] * 3
    assert await store.position(again) == 4  # bob, ann (back), bob, ann (again)


async def test_claiming_a_parked_task_owes_the_next_in_line_a_message(store: Store) -> None:
    one = LimitSettings(start=1, max=1, min=1, recovery_interval_s=3600)
    await store.configure_limits({"r": one})
    [holder, parked] = await submit(store, "bob", 2, resource="r")
    [plain] = await submit(store, "bob")
    await store.clear_outbox([holder, parked, plain])  # their messages were published
    first = await store.claim_next("q", "dies", 0.2)
    assert isinstance(first, Claim) and first.task.id == holder
    assert isinstance(await store.claim_next("q", "w", 30), Waiting)  # parked spends its own
    await let_time_pass(0.3)  # the holder's lease runs out: its permit is free, nobody woken
    claim = await store.claim_next("q", "w", 30)  # the message of plain, spent on parked
    assert isinstance(claim, Claim) and claim.task.id == parked
    assert [m.task_id for m in await store.take_outbox(10, 30)] == [plain]


async def line_in_position_order(store: Store, ids: list[str]) -> list[str]:
    """The tasks of ``ids`` that are in line, by position; asserts that the positions are
    exactly 1..n, each once (a counting error shows as a gap or a duplicate)."""
    positions = {task_id: await store.position(task_id) for task_id in ids}
    line = sorted((p, t) for t, p in positions.items() if p is not None)
    assert [p for p, _ in line] == list(range(1, len(line) + 1))
    return [t for _, t in line]


async def test_positions_stay_exact_through_churn(store: Store) -> None:
    """Long lines (one user's tags spanning over a million), weights, priorities, cancels and
    a retry that keeps its tag: positions stay a permutation, and claims follow them."""
    rng = random.Random(7)
    ids = await submit(store, "flood", 1100)
    for i in range(30):
        ids += await submit(store, f"u{i}", 3, weight=rng.choice([0.5, 1.0, 4.0]))
    ids += await submit(store, "urgent", 5, priority=2)
    for task_id in rng.sample(ids, 40):
        await store.cancel(task_id)
    first = await store.claim_next("q", "w", 30)
    assert isinstance(first, Claim)
    await store.finish(first.lease, Requeue(0.0, "flaky"))
    line = await line_in_position_order(store, ids)
    assert len(line) == len(ids) - 40
    claimed = []
    for _ in range(60):
        claim = await store.claim_next("q", "w", 30)
        assert isinstance(claim, Claim)
        claimed.append(claim.task.id)
    assert claimed == line[:60]
    assert await line_in_position_order(store, ids) == line[60:]
