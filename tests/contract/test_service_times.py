"""Service times: a moving average of run lengths per (queue, kind), for ETAs. Every store."""

from __future__ import annotations

from genqueue.contracts import Cancelled, Failed, Requeue, Store, Succeeded
from genqueue.models import ServiceTime
from tests.contract.test_store import lease_of, submit_one
from tests.helpers import let_time_pass


async def run_for(store: Store, seconds: float, outcome: object, **fields: object) -> None:
    task_id = await submit_one(store, **fields)
    lease = await lease_of(store, task_id, "w", 30)
    await let_time_pass(seconds)
    await store.finish(lease, outcome)  # type: ignore[arg-type]


def of(times: list[ServiceTime], queue: str, kind: str) -> ServiceTime:
    [found] = [t for t in times if (t.queue, t.kind) == (queue, kind)]
    return found


async def test_runs_move_the_average_of_their_queue_and_kind(store: Store) -> None:
    assert await store.service_times() == []
    await run_for(store, 0.2, Succeeded({}))
    first = of(await store.service_times(), "q", "debug.echo")
    assert first.samples == 1 and 0.2 <= first.mean_s < 0.35 and first.deviation_s == 0
    await run_for(store, 0.6, Failed("boom"))
    second = of(await store.service_times(), "q", "debug.echo")
    x = second.mean_s - first.mean_s
    assert second.samples == 2 and 0.06 <= x < 0.12  # a fifth of the ~0.4 s difference
    assert 0.06 <= second.deviation_s < 0.12


async def test_interrupted_runs_and_other_kinds_are_apart(store: Store) -> None:
    await run_for(store, 0.1, Requeue(0.0, "again"))
    await run_for(store, 0.1, Cancelled())
    assert await store.service_times() == []
    await run_for(store, 0.1, Succeeded({}), kind="other.kind", queue="q2")
    await run_for(store, 0.1, Succeeded({}))
    assert [(t.queue, t.kind) for t in await store.service_times()] == [
        ("q", "debug.echo"),
        ("q2", "other.kind"),
    ]
