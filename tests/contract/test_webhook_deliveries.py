"""Webhook deliveries in the Store, run against every backend: targets kept with tasks and
batches, deliveries inserted once per id, taken with a hold, attempts logged, listed per task
and per batch, purged with their tasks, and the pumps' cursor."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from genqueue.contracts import Store, Succeeded
from genqueue.errors import TaskNotFoundError
from genqueue.models import Batch, utcnow
from genqueue.webhooks.records import (
    DeliveryState,
    WebhookAttempt,
    WebhookDelivery,
    WebhookTarget,
)
from tests.contract.test_store import lease_of, new_task, submit_one

TARGET = WebhookTarget(url="https://hooks.example.com/in", events=["task.succeeded"])


def delivery(
    task_id: str | None = None, batch_id: str | None = None, **fields: object
) -> WebhookDelivery:
    values: dict[str, object] = {
        "id": f"msg_{uuid.uuid4().hex}",
        "task_id": task_id,
        "batch_id": batch_id,
        "url": TARGET.url,
        "event": "task.succeeded",
        "body": '{"type":"task.succeeded","data":{"n":1}}',
        "created_at": utcnow(),
        **fields,
    }
    return WebhookDelivery.model_validate(values)


def attempt(status: int | None = 500, error: str | None = None) -> WebhookAttempt:
    return WebhookAttempt(at=utcnow(), status=status, error=error, duration_s=0.25)


async def test_a_task_and_a_batch_keep_their_webhook(store: Store) -> None:
    plain = await submit_one(store)
    [(task, created)] = await store.submit([new_task(webhook=TARGET)])
    assert created and task.webhook == TARGET  # the answer of submit has it too
    assert (await store.get(task.id)).webhook == TARGET
    assert (await store.get(plain)).webhook is None
    target = WebhookTarget(url="https://b.example.com/", events=["batch.finished"])
    batch = Batch(id=uuid.uuid4().hex, user="ann", created_at=utcnow(), size=1, webhook=target)
    [(in_batch, _)] = await store.submit([new_task(batch_id=batch.id, user="ann")], batch=batch)
    assert (await store.get_batch(batch.id)).webhook == target
    page = await store.list_batches("ann", 10, None)
    assert [b.webhook for b in page.batches if b.id == batch.id] == [target]
    assert (await store.get(in_batch.id)).webhook is None


async def test_a_delivery_is_inserted_once_per_id(store: Store) -> None:
    task_id = await submit_one(store)
    first, second = delivery(task_id), delivery(task_id)
    assert await store.webhooks.add([first, second]) == [first.id, second.id]
    again = delivery(task_id, id=first.id, body="another body")
    third = delivery(task_id)
    assert await store.webhooks.add([again, third]) == [third.id]
    listed = await store.webhooks.deliveries(task_id=task_id)
    assert {d.id for d in listed} == {first.id, second.id, third.id}
    kept = next(d for d in listed if d.id == first.id)
    assert kept.body == first.body  # the first one stays as it was
    assert (kept.state, kept.attempts, kept.log, kept.url) == ("pending", 0, [], TARGET.url)
    assert await store.webhooks.pending() == 3


async def test_concurrent_adds_of_one_id_make_one_row(store: Store) -> None:
    task_id = await submit_one(store)
    one = delivery(task_id)
    results = await asyncio.gather(*(store.webhooks.add([one]) for _ in range(5)))
    assert sorted(len(r) for r in results) == [0, 0, 0, 0, 1]
    assert [d.id for d in await store.webhooks.deliveries(task_id=task_id)] == [one.id]


async def test_a_taken_delivery_is_held_from_other_senders(store: Store) -> None:
    task_id = await submit_one(store)
    made = [delivery(task_id) for _ in range(6)]
    await store.webhooks.add(made)
    first, second = await asyncio.gather(store.webhooks.take(4, 60.0), store.webhooks.take(4, 60.0))
    ids_first, ids_second = {d.id for d in first}, {d.id for d in second}
    assert not ids_first & ids_second
    assert ids_first | ids_second == {d.id for d in made}
    assert await store.webhooks.take(10, 60.0) == []
    taken = first[0]
    assert taken.body == next(d.body for d in made if d.id == taken.id)
    assert taken.next_attempt_at is not None and taken.next_attempt_at > utcnow()


async def test_a_hold_that_ran_out_makes_the_delivery_due_again(store: Store) -> None:
    one = delivery(await submit_one(store))
    await store.webhooks.add([one])
    assert [d.id for d in await store.webhooks.take(5, 0.0)] == [one.id]
    assert [d.id for d in await store.webhooks.take(5, 60.0)] == [one.id]
    assert await store.webhooks.take(5, 60.0) == []


async def test_attempts_are_logged_and_a_final_state_is_never_undone(store: Store) -> None:
    task_id = await submit_one(store)
    one = delivery(task_id)
    await store.webhooks.add([one])
    [taken] = await store.webhooks.take(1, 60.0)
    failed_try = attempt(503)
    assert await store.webhooks.record_attempt(taken.id, failed_try, DeliveryState.PENDING, 60.0)
    [after] = await store.webhooks.deliveries(task_id=task_id)
    assert (after.state, after.attempts, after.log) == ("pending", 1, [failed_try])
    assert after.next_attempt_at is not None
    assert after.next_attempt_at - utcnow() > timedelta(seconds=50)
    assert await store.webhooks.take(5, 60.0) == []  # not due for a minute
    assert await store.webhooks.record_attempt(
        one.id, attempt(None, "timed out"), DeliveryState.PENDING, 0.0
    )
    [due] = await store.webhooks.take(5, 60.0)
    ok = attempt(204)
    assert await store.webhooks.record_attempt(due.id, ok, DeliveryState.DELIVERED, 0.0)
    late = attempt(500)
    assert not await store.webhooks.record_attempt(due.id, late, DeliveryState.PENDING, 0.0)
    [final] = await store.webhooks.deliveries(task_id=task_id)
    assert final.state == DeliveryState.DELIVERED and final.next_attempt_at is None
    assert [a.status for a in final.log] == [503, None, 204]
    assert final.log[1].error == "timed out" and final.attempts == 3
    assert await store.webhooks.take(5, 0.0) == []
    assert await store.webhooks.pending() == 0
    assert not await store.webhooks.record_attempt("msg_unknown", ok, DeliveryState.FAILED, 0.0)


async def test_deliveries_are_listed_per_task_and_per_batch(store: Store) -> None:
    batch = Batch(id=uuid.uuid4().hex, created_at=utcnow(), size=2)
    results = await store.submit([new_task(batch_id=batch.id) for _ in range(2)], batch=batch)
    a, b = (task.id for task, _ in results)
    early = utcnow() - timedelta(seconds=2)
    of_a = delivery(a, batch.id, created_at=early)
    of_b = delivery(b, batch.id, created_at=early + timedelta(seconds=1))
    finished = delivery(None, batch.id, id=f"msg_batch_{batch.id}", event="batch.finished")
    elsewhere = delivery(await submit_one(store))
    await store.webhooks.add([finished, of_b, of_a, elsewhere])
    assert [d.id for d in await store.webhooks.deliveries(task_id=a)] == [of_a.id]
    listed = await store.webhooks.deliveries(batch_id=batch.id)
    assert [d.id for d in listed] == [of_a.id, of_b.id, finished.id]  # oldest first
    assert listed[2].task_id is None and listed[2].event == "batch.finished"
    assert await store.webhooks.deliveries(task_id="no-such-task") == []


async def test_purge_deletes_the_deliveries_of_purged_tasks_and_batches(store: Store) -> None:
    done = await submit_one(store)
    await store.finish(await lease_of(store, done, "w", 5.0), Succeeded({}))
    live = await submit_one(store)
    batch = Batch(id=uuid.uuid4().hex, created_at=utcnow() - timedelta(seconds=5), size=1)
    [(member, _)] = await store.submit([new_task(batch_id=batch.id)], batch=batch)
    await store.finish(await lease_of(store, member.id, "w", 5.0), Succeeded({}))
    made = utcnow() - timedelta(seconds=1)
    of_done, of_live = delivery(done, created_at=made), delivery(live, created_at=made)
    of_batch = delivery(None, batch.id, event="batch.finished", created_at=made)
    await store.webhooks.add([of_done, of_live, of_batch])
    await store.purge(3600.0)
    assert len(await store.webhooks.deliveries(task_id=done)) == 1  # not old enough yet
    assert set(await store.purge(0.0)) == {done, member.id}
    try:
        await store.get_batch(batch.id)
        raise AssertionError("the empty batch should be purged")
    except TaskNotFoundError:
        pass
    assert await store.webhooks.deliveries(task_id=done) == []
    assert await store.webhooks.deliveries(batch_id=batch.id) == []
    assert [d.id for d in await store.webhooks.deliveries(task_id=live)] == [of_live.id]
    assert await store.webhooks.pending() == 1


async def test_the_cursor_is_kept_and_replaced(store: Store) -> None:
    assert await store.webhooks.cursor() is None
    await store.webhooks.save_cursor("41")
    await store.webhooks.save_cursor("1700000000000-3")
    assert await store.webhooks.cursor() == "1700000000000-3"
