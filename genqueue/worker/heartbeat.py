"""Heartbeat: renew every in-flight lease and refresh the worker's registry entry.

A renewal that comes back with ``cancel_requested`` stops that run as cancelled; one that
fails with ``LeaseLostError`` stops it without recording anything (another run owns it now).
While the store is unreachable both loops here stand still (the runs go on): the first round
after it answers again renews every lease, so runs that outlived a short outage keep their
tasks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from genqueue.contracts import Store
from genqueue.errors import OUTAGE_ERRORS, LeaseLostError
from genqueue.worker.execution import Execution, StopReason
from genqueue.worker.health import Reachability

log = logging.getLogger(__name__)


async def renew_leases(store: Store, executions: list[Execution], lease_s: float) -> None:
    """One round of renewals; each execution learns of cancellation or a lost lease."""
    for execution in executions:
        if execution.done:
            continue  # finishing now: its lease is being released, not lost
        try:
            lease = await store.renew(execution.lease, lease_s)
        except LeaseLostError:
            if not execution.done:
                log.warning("lease on %s lost; stopping its run", execution.task.id)
                execution.stop(StopReason.LEASE_LOST)
            continue
        execution.lease = lease
        if lease.cancel_requested:
            execution.stop(StopReason.CANCEL)


async def heartbeat(
    store: Reachability,
    report: Callable[[], Awaitable[None]],
    broker: Reachability,
    *,
    every_s: float,
) -> None:
    """Forever: ``report`` (renew leases, refresh the registry) while the store answers, and
    look at the broker, whose consumer may be reconnecting quietly (RabbitMQ's does)."""
    while True:
        if store.reachable.is_set():
            try:
                await report()
            except OUTAGE_ERRORS as exc:
                store.failed(exc)
            except Exception:
                log.exception("heartbeat failed; retrying")
        if broker.reachable.is_set():
            try:
                async with asyncio.timeout(every_s * 5):
                    await broker.ping()
            except OUTAGE_ERRORS as exc:
                broker.failed(exc)
        await asyncio.sleep(every_s)


PROGRESS_FLUSH_S = 0.2


async def flush_progress(executions: Callable[[], list[Execution]], store: Reachability) -> None:
    """Forever: send the latest progress of every run, at most every 0.2 s each.

    One loop per worker rather than one per run: a run that reports nothing costs nothing.
    """
    while True:
        await asyncio.sleep(PROGRESS_FLUSH_S)
        for execution in executions():
            if execution.done or not store.reachable.is_set():
                continue
            try:
                await execution.flush_progress()
            except OUTAGE_ERRORS as exc:
                store.failed(exc)
