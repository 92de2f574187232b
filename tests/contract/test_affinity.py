"""Warm-model affinity in the store: a task keeps the model it was submitted with, ``line``
shows the head of a queue's line in claim_next's order, and workers report the models they
hold warm. Every store."""

from __future__ import annotations

from datetime import timedelta

from genqueue.contracts import Claim, Requeue, Store, Waiting
from genqueue.models import utcnow
from tests.contract.test_fair import submit
from tests.contract.test_limits import limited
from tests.contract.test_store import lease_of, new_task, submit_one
from tests.helpers import worker_info


async def line_ids(store: Store, limit: int = 100, queue: str = "q") -> list[str]:
    return [entry.task_id for entry in await store.line(queue, limit)]


async def test_a_task_keeps_the_model_it_was_submitted_with(store: Store) -> None:
    [(warm, _), (plain, _)] = await store.submit([new_task(model="sdxl-1.0"), new_task()])
    assert (warm.model, plain.model) == ("sdxl-1.0", None)
    assert (await store.get(warm.id)).model == "sdxl-1.0"
    assert (await store.get(plain.id)).model is None


async def test_line_shows_the_order_claim_next_hands_tasks_out_in(store: Store) -> None:
    await submit(store, "ann", 4, model="a")
    await submit(store, "bob", 2, model="b")
    await submit(store, "cid", 1)
    await submit(store, "bob", 2, priority=3, model="b3")
    await submit(store, None, 1, queue="other")  # another queue's line is its own
    entries = await store.line("q", 100)
    claimed = []
    for _ in range(9):
        claim = await store.claim_next("q", "w", 30)
        assert isinstance(claim, Claim)
        claimed.append((claim.task.id, claim.task.model))
    assert [(e.task_id, e.model) for e in entries] == claimed
    assert await store.line("q", 100) == []


async def test_a_task_due_at_submit_is_in_line_at_once(store: Store) -> None:
    # Redis once kept a due-now not_before rounded to 100 us, up to 50 us past the clock
    # read a moment later, and sent some just-submitted tasks out of line for a while.
    ids = []
    for _ in range(200):
        ids += await submit(store, "ann")
    assert sorted(await line_ids(store, 500)) == sorted(ids)


async def test_line_honours_its_limit(store: Store) -> None:
    await submit(store, "ann", 3)
    await submit(store, "bob", 3)
    everyone = await line_ids(store)
    assert len(everyone) == 6
    assert await line_ids(store, 4) == everyone[:4]
    assert await line_ids(store, 1) == everyone[:1]
    assert await line_ids(store, 0) == []


async def test_line_leaves_out_parked_delayed_and_claimed_tasks(store: Store) -> None:
    a, b, parked = await limited(store, 3)  # two permits
    delayed = await submit_one(store, not_before=utcnow() + timedelta(seconds=60))
    claimed, waiting = await submit_one(store), await submit_one(store)
    assert await line_ids(store) == [a, b, parked, claimed, waiting]
    await lease_of(store, a, "w1", 30)
    await lease_of(store, b, "w2", 30)
    assert isinstance(await store.claim(parked, "w3", 30), Waiting)
    await lease_of(store, claimed, "w4", 30)
    assert await line_ids(store) == [waiting]
    assert delayed not in await line_ids(store)


async def test_a_task_retried_later_leaves_the_line_until_it_is_due(store: Store) -> None:
    first, second = await submit(store, "ann", 2)
    lease = await lease_of(store, first, "w", 30)
    await store.finish(lease, Requeue(60.0, "try again later"))
    assert await line_ids(store) == [second]


async def test_a_task_claimed_from_the_line_leaves_it(store: Store) -> None:
    await submit(store, "ann", 2, model="a")
    await submit(store, "bob", 2, model="b")
    entries = await store.line("q", 10)
    chosen = entries[1]  # passed over the head for a warm model
    claim = await store.claim(chosen.task_id, "w", 30)
    assert isinstance(claim, Claim) and claim.task.model == chosen.model
    assert await store.line("q", 10) == [e for e in entries if e != chosen]
    head = await store.claim_next("q", "w", 30)
    assert isinstance(head, Claim) and head.task.id == entries[0].task_id


async def models_of(store: Store, worker_id: str) -> list[str]:
    [worker] = [w for w in await store.list_workers() if w.id == worker_id]
    return worker.models


async def test_heartbeats_replace_the_models_a_worker_holds_warm(store: Store) -> None:
    info = worker_info("w").model_copy(update={"models": ["sdxl-1.0", "clip"]})
    await store.register_worker(info)
    assert await models_of(store, "w") == ["sdxl-1.0", "clip"]
    await store.heartbeat_worker("w", [], 0, 0, models=["llama-3"])
    assert await models_of(store, "w") == ["llama-3"]
    await store.heartbeat_worker("w", [], 1, 0)  # positional figures, no models: none warm
    assert await models_of(store, "w") == []
    await store.heartbeat_worker("w", [], 1, 0, "broker unreachable", models=("clip",))
    assert await models_of(store, "w") == ["clip"]


async def test_a_worker_registered_without_models_holds_none(store: Store) -> None:
    await store.register_worker(worker_info("w"))
    assert await models_of(store, "w") == []
