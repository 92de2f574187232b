"""Heartbeat: renew every in-flight lease and refresh the worker's registry entry.

A renewal that comes back with ``cancel_requested`` stops that run as cancelled; one that
fails with ``LeaseLostError`` stops it without recording anything (another run owns it now).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from genqueue.contracts import Store
from genqueue.errors import LeaseLostError
from genqueue.worker.execution import Execution, StopReason

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
    store: Store,
    worker_id: str,
    executions: Callable[[], list[Execution]],
    counts: Callable[[], tuple[int, int]],
    *,
    lease_s: float,
    every_s: float,
) -> None:
    """Forever: renew leases, then report this worker alive with its current figures."""
    while True:
        try:
            running = executions()
            await renew_leases(store, running, lease_s)
            succeeded, failed = counts()
            await store.heartbeat_worker(worker_id, [e.task.id for e in running], succeeded, failed)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("heartbeat failed; retrying")
        await asyncio.sleep(every_s)


PROGRESS_FLUSH_S = 0.2


async def flush_progress(executions: Callable[[], list[Execution]]) -> None:
    """Forever: send the latest progress of every run, at most every 0.2 s each.

    One loop per worker rather than one per run: a run that reports nothing costs nothing.
    """
    while True:
        await asyncio.sleep(PROGRESS_FLUSH_S)
        for execution in executions():
            if not execution.done:
                await execution.flush_progress()
