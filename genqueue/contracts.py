"""The whole backend contract: ``Store`` (the truth) and ``Broker`` (the delivery).

Backends implement these Protocols structurally (no base class) and are checked by mypy at the
return types of ``open_store``/``open_broker``. The conformance suite in ``tests/contract``
defines what "implements" means; every guarantee below is tested there on every backend.

Division of labour: the broker moves task ids to workers with ack/nack and knows nothing about
status or payloads. The store decides who may run a task (atomic claim with a lease fenced by a
token) and records the outcome once. A duplicate or stale delivery is therefore harmless: its
claim fails and it is acknowledged and dropped.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from genqueue.models import (
    Batch,
    Event,
    NewTask,
    Progress,
    QueueStats,
    Task,
    TaskFilter,
    WorkerInfo,
)


@dataclass(frozen=True)
class Lease:
    """Proof that one run of one task belongs to one worker until ``expires_at``.

    ``token`` is fresh for every claim: a store accepts renew, progress and finish only with the
    token of the current run, so a worker that lost its lease cannot overwrite a newer run.
    """

    task_id: str
    worker_id: str
    token: str
    attempt: int
    expires_at: datetime
    cancel_requested: bool = False


@dataclass(frozen=True)
class Claim:
    """A successful claim: the lease, and the task as it stands now (running, attempt n)."""

    lease: Lease
    task: Task


@dataclass(frozen=True)
class Message:
    """What the broker carries: a task id, where, how urgent, and from when."""

    queue: str
    task_id: str
    priority: int = 0
    delay_s: float = 0.0


@dataclass(frozen=True)
class QueueStatus:
    """One broker queue as the broker sees it; None where the backend cannot tell."""

    queue: str
    ready: int
    unacked: int | None = None
    consumers: int | None = None


@dataclass(frozen=True)
class BrokerStatus:
    """What ``GET /v1/broker`` shows: the backend, whether it is reachable now, and its queues.

    ``detail`` is one human sentence (server version, or why it is not connected).
    """

    backend: str
    connected: bool
    detail: str
    queues: list[QueueStatus]


@dataclass(frozen=True)
class Succeeded:
    result: dict[str, Any]


@dataclass(frozen=True)
class Failed:
    error: str


@dataclass(frozen=True)
class Requeue:
    """Back to ``queued``: a retry after ``delay_s``, or (``refund``) a run that was interrupted
    by shutdown and should not count against the attempts budget."""

    delay_s: float
    error: str | None = None
    refund: bool = False


@dataclass(frozen=True)
class Cancelled:
    reason: str = "cancelled"


Outcome = Succeeded | Failed | Requeue | Cancelled


@dataclass(frozen=True)
class Page:
    """One page of a task listing, newest first, and the cursor of the next page (if any)."""

    tasks: list[Task]
    next_cursor: str | None


class Store(Protocol):
    """Task records, batches, leases, events and the worker registry."""

    async def ping(self) -> None:
        """Raise ``BackendUnavailableError`` unless the store answers."""

    async def submit(
        self, tasks: Sequence[NewTask], *, batch: Batch | None = None
    ) -> list[tuple[Task, bool]]:
        """Create tasks (and their batch) atomically, all or none; emit ``task.queued``.

        A task whose idempotency key already exists is not created: the existing task is
        returned with ``False``. Created tasks come back with ``True``, in input order.
        """

    async def get(self, task_id: str) -> Task:
        """The task, or ``TaskNotFoundError``."""

    async def list_tasks(self, where: TaskFilter, limit: int, cursor: str | None) -> Page:
        """Tasks matching ``where``, newest first, paginated by an opaque cursor."""

    async def position(self, task_id: str) -> int | None:
        """1-based place of a queued task in its queue (1 = next to start); None otherwise.

        Order is the broker's: priority (higher first), then age.
        """

    async def claim(self, task_id: str, worker_id: str, lease_s: float) -> Claim | None:
        """Atomically move a ``queued`` task whose ``not_before`` has passed to ``running``
        under a new lease, counting one more attempt; emit ``task.started``.

        None if the task is not claimable (already running elsewhere, finished, cancelled,
        unknown, or not due yet): the caller acknowledges the delivery and moves on.
        """

    async def renew(self, lease: Lease, lease_s: float) -> Lease:
        """Extend a live lease. The returned lease carries ``cancel_requested``.

        ``LeaseLostError`` if the lease expired and was requeued, or the token is stale.
        """

    async def set_progress(self, lease: Lease, progress: Progress) -> None:
        """Record progress of the current run and emit ``task.progress``; fenced like renew."""

    async def add_event(self, lease: Lease, event_type: str, data: dict[str, Any]) -> None:
        """Record an event the running handler raised (``diagnosis.alert``, ...) and send it to
        every watcher, with the task's status ``running``. Fenced like :meth:`set_progress`:
        ``LeaseLostError`` if the run no longer owns the task."""

    async def finish(self, lease: Lease, outcome: Outcome) -> Task:
        """Record the outcome of the run holding ``lease``, exactly once, and emit its event.

        Fenced by the lease token: ``LeaseLostError`` if another run owns the task now or it
        already finished, so a late duplicate never overwrites a recorded result.
        """

    async def cancel(self, task_id: str) -> Task:
        """Cancel: a queued task becomes ``cancelled`` and never starts; a running one gets
        ``cancel_requested`` (its worker stops it and finishes it as cancelled); a finished
        one is returned unchanged. ``TaskNotFoundError`` if unknown. Idempotent."""

    async def cancel_batch(self, batch_id: str) -> Batch:
        """Cancel every unfinished task of a batch as :meth:`cancel` would."""

    async def requeue_expired(self) -> list[Task]:
        """Tasks whose lease expired go back to ``queued`` (or ``failed`` once out of attempts),
        each exactly once even with several sweepers. Returns the requeued ones, which the
        caller must publish again."""

    async def get_batch(self, batch_id: str) -> Batch:
        """The batch with its counts per status, or ``TaskNotFoundError``."""

    async def queue_stats(self) -> list[QueueStats]:
        """Counts per status for every queue that has tasks."""

    async def register_worker(self, info: WorkerInfo) -> None:
        """Add or replace a worker in the registry (online)."""

    async def heartbeat_worker(
        self, worker_id: str, running: list[str], succeeded: int, failed: int
    ) -> None:
        """Refresh a worker's last-seen time and its current figures."""

    async def stop_worker(self, worker_id: str) -> None:
        """Mark a worker that shut down cleanly as ``stopped``."""

    async def list_workers(self) -> list[WorkerInfo]:
        """Every worker the registry knows, newest first."""

    async def mark_offline(self, silent_s: float) -> list[str]:
        """Mark online workers silent for ``silent_s`` as offline and expire their leases now,
        so their tasks are recovered by the next :meth:`requeue_expired`. Returns their ids."""

    async def purge(self, older_than_s: float) -> list[str]:
        """Retention: delete finished tasks (and empty batches, old events, stopped workers)
        older than ``older_than_s``. Returns the deleted task ids (for artifact cleanup)."""

    async def watch(self) -> AsyncGenerator[Event, None]:
        """Events committed after this call returns, from every process sharing this store,
        in commit order. Awaiting it opens the feed, so nothing between "now" and the first
        read is missed; close the generator (``aclose``) when done."""

    async def aclose(self) -> None:
        """Release connections; the store is unusable afterwards."""


class Delivery(Protocol):
    """One received message. Acknowledge after the outcome is stored, never before."""

    @property
    def task_id(self) -> str: ...

    @property
    def queue(self) -> str: ...

    async def ack(self) -> None:
        """Done with it: the broker forgets the message. Idempotent."""

    async def nack(self, delay_s: float = 0.0) -> None:
        """Give it back, to be delivered again after ``delay_s``."""


class Broker(Protocol):
    """Moves task ids to workers; at-least-once, with acknowledgement."""

    async def ping(self) -> None:
        """Raise ``BackendUnavailableError`` unless the broker answers."""

    async def publish(self, messages: Sequence[Message]) -> None:
        """Make every message deliverable on its queue after its delay, durably, before
        returning. Higher priority is delivered first, then older first."""

    def consume(self, queues: Sequence[str], prefetch: int) -> AsyncGenerator[Delivery, None]:
        """Deliveries from ``queues``, holding at most ``prefetch`` unacknowledged at a time.

        A delivery not acknowledged by a consumer that died is delivered again (after the
        connection drops or a visibility timeout, depending on the backend). Closing the
        iterator gives back what it fetched but has not yielded.
        """
        ...

    async def depth(self, queue: str) -> int:
        """Messages waiting on ``queue`` (delivered-but-unacknowledged excluded)."""

    async def status(self, queues: Sequence[str]) -> BrokerStatus:
        """Connection state and, for each of ``queues``, ready and unacknowledged messages and
        consumers. Does not raise when the server is unreachable: it says so
        (``connected=False``, queues empty), so an operator sees the outage."""

    async def aclose(self) -> None:
        """Release connections."""
