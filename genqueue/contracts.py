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

from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from genqueue.models import (
    EXPIRED_KEPT_S,
    ApiKey,
    Batch,
    Event,
    LimitStatus,
    NewTask,
    Progress,
    QueueStats,
    ServiceTime,
    Task,
    TaskFilter,
    Tombstone,
    WorkerInfo,
)
from genqueue.settings import LimitSettings
from genqueue.webhooks.records import DeliveryState, WebhookAttempt, WebhookDelivery


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
    # For a task with a resource: the limiter's epoch when its permit was taken, so a limit
    # error of this run cuts the limit only if no other cut came since (genqueue/limiter.py).
    epoch: int | None = None


@dataclass(frozen=True)
class Claim:
    """A successful claim: the lease, and the task as it stands now (running, attempt n)."""

    lease: Lease
    task: Task


@dataclass(frozen=True)
class LineEntry:
    """A task in its queue's line as :meth:`Store.line` shows it: enough to choose by model."""

    task_id: str
    model: str | None


@dataclass(frozen=True)
class Waiting:
    """A claim refused for want of a permit of ``task.resource``: every permit is taken, or
    the resource is blocked until ``until`` (a Retry-After). The task stays ``queued`` with
    its position, parked (``waiting_for`` set until a claim admits it); the store owes it a
    message again (an outbox entry due now) once a permit is free for it
    (:meth:`Store.finish`, :meth:`Store.wake_waiting`), ``until`` passed included. The caller
    acknowledges the delivery it holds."""

    task: Task
    until: datetime | None = None


# A submitter publishes at once and clears the entry; the outbox matters only if it dies or
# the broker is down, so the relay waits this long before publishing a new task's message.
OUTBOX_GRACE_S = 5.0


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
    # The size of the batch the run was part of (batched kinds): kept as Task.batch_size.
    batch_size: int | None = None


@dataclass(frozen=True)
class Failed:
    error: str
    batch_size: int | None = None


@dataclass(frozen=True)
class Requeue:
    """Back to ``queued``: a retry after ``delay_s``, or (``refund``) a run that was interrupted
    by shutdown and should not count against the attempts budget."""

    delay_s: float
    error: str | None = None
    refund: bool = False
    batch_size: int | None = None


@dataclass(frozen=True)
class Throttled:
    """The upstream refused for its limit (HTTP 429, ``RequestLimitExceeded``): the task goes
    back to ``queued`` without spending an attempt, not before ``delay_s``, and the resource's
    limiter takes the hit (:func:`genqueue.limiter.throttle`: a cut, and with
    ``retry_after_s`` every caller held back that long)."""

    delay_s: float
    error: str
    retry_after_s: float | None = None


@dataclass(frozen=True)
class Cancelled:
    reason: str = "cancelled"


Outcome = Succeeded | Failed | Requeue | Throttled | Cancelled


@dataclass(frozen=True)
class Page:
    """One page of a task listing, newest first, and the cursor of the next page (if any)."""

    tasks: list[Task]
    next_cursor: str | None


@dataclass(frozen=True)
class BatchPage:
    """One page of a batch listing, newest first; ``next_cursor`` is the id of the last batch
    of the page when more follow."""

    batches: list[Batch]
    next_cursor: str | None


@dataclass(frozen=True)
class QuotaWindow:
    """A key's submit count in the current fixed window, as :meth:`QuotaStore.spend` left
    it: whether the tasks asked for were counted, the count now, and the seconds until the
    window ends (when the count starts again from 0)."""

    admitted: bool
    used: int
    resets_in_s: float


class Store(Protocol):
    """Task records, batches, leases, events and the worker registry."""

    @property
    def quotas(self) -> QuotaStore:
        """Submit quota windows per key and the counts queue bounds read."""

    @property
    def webhooks(self) -> WebhookStore:
        """Webhook deliveries owed and made, and where the pumps stopped."""

    async def ping(self) -> None:
        """Raise ``BackendUnavailableError`` unless the store answers."""

    async def submit(
        self, tasks: Sequence[NewTask], *, batch: Batch | None = None
    ) -> list[tuple[Task, bool]]:
        """Create tasks (and their batch) atomically, all or none; emit ``task.queued``.

        A task whose idempotency key already exists is not created: the existing task is
        returned with ``False``. Created tasks come back with ``True``, in input order.
        Each created task gets an outbox entry in the same atomic step, due in
        ``OUTBOX_GRACE_S`` (see :meth:`take_outbox`). ``not_before`` (None: now),
        ``start_by``, ``cancel_after_s``, ``resource`` and ``model`` are kept as given.
        """

    async def get(self, task_id: str) -> Task:
        """The task, or ``TaskNotFoundError``."""

    async def list_tasks(self, where: TaskFilter, limit: int, cursor: str | None) -> Page:
        """Tasks matching ``where``, newest first, paginated by an opaque cursor."""

    async def position(self, task_id: str) -> int | None:
        """1-based place of a ready task in its queue's fair order (1 = next to start); None
        for a task not queued, or queued but not due yet (not in line before its time).
        Parked tasks keep their place. See :meth:`claim_next` for the order."""

    async def claim(self, task_id: str, worker_id: str, lease_s: float) -> Claim | Waiting | None:
        """Atomically move a ``queued`` task whose ``not_before`` has passed to ``running``
        under a new lease, counting one more attempt; emit ``task.started``.

        A task with a ``resource`` also takes one of its permits in the same step: the
        resource's limiter (see :meth:`configure_limits`; a resource never configured is not
        limited) admits it when it is not blocked and fewer than ``permits`` running tasks of
        that resource hold a live lease (:func:`genqueue.limiter.admits`, recovery counted).
        A permit is the lease: it ends when the task leaves ``running`` or its lease expires
        (a dead worker's permit comes back with its lease). The lease carries the limiter's
        epoch. Not admitted: the task is parked and :class:`Waiting` returned.

        A queued task whose ``start_by`` has passed is not run: it becomes ``expired`` (emit
        ``task.expired``) and None is returned.

        None if the task is not claimable (already running elsewhere, finished, cancelled,
        unknown, or not due yet): the caller acknowledges the delivery and moves on.
        """

    async def claim_next(
        self, queue: str, worker_id: str, lease_s: float
    ) -> Claim | Waiting | None:
        """Claim, as :meth:`claim` would, the task of ``queue`` next in fair order. A broker
        message is a credit for its queue, whichever task it names: every queued task is
        owed one, so there are always as many credits as tasks to claim.

        Fair order of the ready tasks of a queue: priority first (higher first); within a
        priority, start-time fair queuing across users (weighted); then age. A task becomes
        ready when it is due: at submit, or for a task submitted with a future
        ``not_before``, at the first ``claim_next`` of its queue after that (which first
        makes every due task of the queue ready). When a new task becomes ready it is
        tagged ``S = max(V, F[user])``, and ``F[user] = S + max(1, round(1000 / weight))``,
        where ``F`` is kept per (queue, priority, user; None counts as one user) and the
        floor ``V`` is the smallest tag of the ready tasks of that queue and priority, or
        when none is ready the largest ``F`` there (0 if none): a user who comes back after
        a quiet spell starts level with the others, neither ahead nor in debt. The order
        is (priority desc, tag, age); no row is written by every claim. A task queued
        again (retry, throttle, lease expiry) keeps its tag, so it goes back to the head of
        its priority once due. A
        user's long batch thus interleaves with everyone else's tasks, and a newcomer
        waits behind at most one task of each other user.

        Eligible: ready, and not parked, or parked for a resource with a free permit now.
        The first eligible task: if its ``start_by`` has passed it expires and the next is
        taken; if it needs a permit and none is free it is parked and :class:`Waiting`
        returned (the credit is spent on parking it: ``Waiting`` only from the call that
        parks it); else it is claimed. A parked task spent its own credit when it was
        parked, so claiming one spends another task's: the first task still in line is
        owed a message then (an outbox entry due now, unless it has one). None: nothing
        eligible (the caller acknowledges the credit, or gives it back until its own task
        is due)."""

    async def line(self, queue: str, limit: int) -> list[LineEntry]:
        """The first ``limit`` tasks of ``queue``'s line in the fair order of
        :meth:`claim_next`: ready (in line), due, and not parked; read only. A worker
        looks here before it passes over a task whose model another worker holds warm
        (``genqueue/worker/affinity.py``), then claims the one it chose with :meth:`claim`.
        Due tasks not in line yet are not shown (the next :meth:`claim_next` brings them
        in)."""

    async def renew(self, lease: Lease, lease_s: float) -> Lease:
        """Extend a live lease. The returned lease carries ``cancel_requested``.

        ``LeaseLostError`` if the lease expired and was requeued, or the token is stale.
        """

    async def set_progress(self, lease: Lease, progress: Progress) -> None:
        """Record progress of the current run and emit ``task.progress``; fenced like renew."""

    async def add_event(self, lease: Lease, event_type: str, data: dict[str, Any]) -> None:
        """Record an event the running handler raised (``diagnosis.alert``, ...) and send it to
        every watcher, with the task's status ``running``. Fenced like :meth:`set_progress`:
        ``LeaseLostError`` if the run no longer owns the task.

        A ``task.preview`` (the run's live picture, ``genqueue.previews``) replaces the task's
        previous one in the kept events, in the same atomic step: a watcher that keeps up
        sees each, one that reads later (``watch`` with ``after``, a lagging feed) only the
        latest preview of each task."""

    async def finish(self, lease: Lease, outcome: Outcome) -> Task:
        """Record the outcome of the run holding ``lease``, exactly once, and emit its event.

        ``Requeue`` and ``Throttled`` make it ``queued`` again (``task.retrying``), not before
        ``delay_s`` (``Throttled``: nor before the resource's ``blocked_until``), the attempt
        refunded for ``Throttled`` and for ``Requeue(refund=True)``. ``Throttled`` applies
        :func:`genqueue.limiter.throttle` to the resource's limiter with ``lease.epoch``.
        Finishing a task with a resource frees its permit and, in the same atomic step, wakes
        parked tasks of that resource as :meth:`wake_waiting` does.

        Fenced by the lease token: ``LeaseLostError`` if another run owns the task now or it
        already finished, so a late duplicate never overwrites a recorded result.

        ``Succeeded`` and ``Failed`` also move the service time of (queue, kind) by the
        run's length x (finish time minus ``started_at``), in the same atomic step: the
        first sample sets mean x and deviation 0; then deviation += 0.2 * (|x - mean| -
        deviation) and mean += 0.2 * (x - mean), with the old mean in both.
        """

    async def cancel(self, task_id: str) -> Task:
        """Cancel: a queued task becomes ``cancelled`` and never starts; a running one gets
        ``cancel_requested`` (its worker stops it and finishes it as cancelled); a finished
        one is returned unchanged. ``TaskNotFoundError`` if unknown. Idempotent."""

    async def cancel_batch(self, batch_id: str) -> Batch:
        """Cancel every unfinished task of a batch as :meth:`cancel` would."""

    async def requeue_expired(self) -> list[Task]:
        """Tasks whose lease expired go back to ``queued`` (or ``failed`` once out of attempts),
        each exactly once even with several sweepers, each with an outbox entry due now (in
        the same atomic step), so their messages are published by whichever relay runs next,
        even if the caller dies now. Returns the requeued ones.

        Queued tasks whose ``start_by`` has passed become ``expired`` here too (emit
        ``task.expired``), so they end on time even with no worker to claim them."""

    async def configure_limits(self, policies: Mapping[str, LimitSettings]) -> None:
        """Create the limiter of each resource (:func:`genqueue.limiter.initial_state`) or
        apply a changed rule to it (:func:`genqueue.limiter.reconfigure`), atomically per
        resource. Workers call it at start for the resources of their kinds."""

    async def limits(self) -> list[LimitStatus]:
        """Every configured limiter as it stands now, by resource name: its state with the
        recovery due by now applied, permits held (running tasks of the resource with a live
        lease) and tasks parked for one."""

    async def wake_waiting(self) -> int:
        """For every limiter with parked tasks, when it is not blocked: the first of them in
        line (priority, then fair order or age), as many as there are free permits, get an outbox
        entry due now (one they already have is left as it is). They stay parked until a
        claim admits them, so waking again wakes the same ones. A permit freed by a lease
        that expired, a limit that grew or a Retry-After that passed reaches its waiter this
        way; the sweeper calls it every round. Returns how many were woken."""

    async def take_outbox(self, limit: int, hold_s: float) -> list[Message]:
        """The outbox: messages owed to the broker, so that no task stored as ``queued`` is
        left without one whatever process dies when (a submitter between storing and
        publishing, a sweeper while the broker is down).

        Atomically takes up to ``limit`` entries that are due, oldest first, and holds them
        for ``hold_s`` (another relay does not take them meanwhile; if this one dies they are
        due again after it). Entries whose task is no longer queued (claimed, cancelled,
        purged) are dropped instead of returned. Each message carries the task's queue and
        priority, and the delay left before its ``not_before``. Publish them, then
        :meth:`clear_outbox`; a message published twice is harmless (its claim fails)."""

    async def clear_outbox(self, task_ids: Sequence[str]) -> None:
        """Forget the outbox entries of these tasks: their messages are published. Idempotent;
        unknown ids are ignored."""

    async def get_batch(self, batch_id: str) -> Batch:
        """The batch with its counts per status, or ``TaskNotFoundError``."""

    async def list_batches(self, user: str | None, limit: int, cursor: str | None) -> BatchPage:
        """Batches (of ``user`` if given) with their counts, newest first (created_at, then
        id), from just after the batch ``cursor`` (the last id of the previous page); a cursor
        no longer stored gives an empty page."""

    async def queue_stats(self) -> list[QueueStats]:
        """Counts per status for every queue that has tasks."""

    async def service_times(self) -> list[ServiceTime]:
        """The service time of every (queue, kind) that has finished a run, by queue and
        kind (see :meth:`finish`)."""

    async def register_worker(self, info: WorkerInfo) -> None:
        """Add or replace a worker in the registry (``online``, no reason)."""

    async def heartbeat_worker(
        self,
        worker_id: str,
        running: list[str],
        succeeded: int,
        failed: int,
        degraded: str | None = None,
        models: Sequence[str] = (),
    ) -> None:
        """Refresh a worker's last-seen time and its current figures (``models``: the models
        it holds warm, replacing the last ones), and say how it is.

        A worker that cannot reach one of its backends keeps running and keeps beating with
        ``degraded`` set to a short reason ("broker unreachable since 12:01:02: ..."): its
        status becomes ``degraded`` with that ``reason``, so operators see it in the registry,
        ``/v1/workers`` and ``/metrics``. ``None`` makes it ``online`` and clears the reason.
        A degraded worker is alive: it goes offline only by falling silent, as an online one."""

    async def stop_worker(self, worker_id: str) -> None:
        """Mark a worker that shut down cleanly as ``stopped`` (no reason)."""

    async def list_workers(self) -> list[WorkerInfo]:
        """Every worker the registry knows, newest first, with the reason of degraded ones."""

    async def mark_offline(self, silent_s: float) -> list[str]:
        """Mark live (``online`` or ``degraded``) workers silent for ``silent_s`` as offline
        (no reason) and expire their leases now, so their tasks are recovered by the next
        :meth:`requeue_expired`. Returns their ids."""

    async def purge(self, older_than_s: float, kept_s: float = EXPIRED_KEPT_S) -> list[str]:
        """Retention: delete finished tasks (and empty batches, old events, stopped or offline
        workers, webhook deliveries made before the cutoff whose task, or batch for
        batch.finished, is gone) older than ``older_than_s``. Returns the deleted task ids
        (for artifact cleanup).

        In the same atomic step, each deleted task leaves a :class:`Tombstone` (its id, user,
        and ``expired_at`` = its ``finished_at`` + ``older_than_s``), kept ``kept_s`` from
        now (none when 0), and tombstones older than that are forgotten."""

    async def tombstone(self, task_id: str) -> Tombstone | None:
        """The tombstone :meth:`purge` left of ``task_id``, or None (never purged, or its
        ``kept_s`` passed). Read only, one key or indexed row."""

    async def cached(
        self, user: str | None, kind: str, cache_key: str, fresh_s: float
    ) -> Task | None:
        """The newest task of ``user`` (None: tasks submitted with no user) and ``kind``
        submitted with ``cache_key`` (``NewTask.cache_key``) that ``succeeded`` less than
        ``fresh_s`` ago, or None. Never another user's task, nor a failed, cancelled or
        unfinished one. Read only, by an index on the key (the result cache,
        ``genqueue/result_cache.py``)."""

    async def task_events(self, task_id: str, limit: int) -> list[Event]:
        """The kept events of one task (see :meth:`watch` for how long), oldest first: its
        newest ``limit`` when it has more. A replaced ``task.preview`` appears once, as the
        latest. An unknown task has none. Read only; what a page opened mid-run shows as
        the history before it follows the task live.

        SQLite and PostgreSQL read them by an index on ``task_id``; Redis keeps a list of
        each task's event ids beside the stream (its last 1,000, for an hour after its last
        event) and skips the ids the stream has trimmed since."""

    async def watch(self, after: str | None = None) -> AsyncGenerator[Event, None]:
        """Events committed after this call returns, from every process sharing this store,
        in commit order. Awaiting it opens the feed, so nothing between "now" and the first
        read is missed; close the generator (``aclose``) when done.

        With ``after`` (an id this store's feed yielded), every event committed after that
        one comes first, then live ones, with no gap and no repeat at the seam: a reader that
        lost its feed (an outage, an API restart, an SSE client sending ``Last-Event-ID``)
        resumes where it stopped. Ids grow in commit order and compare with
        ``genqueue.events.event_order`` (SQLite and PostgreSQL: integers; Redis: stream ids
        ``ms-seq``). PostgreSQL takes ids before commit, so one can commit below the highest
        id seen; resuming treats ids below ``after`` still missing as in flight and yields
        them when they commit (a reader should resume from the highest id it saw).

        Events are kept for a while only (SQLite and PostgreSQL 10 minutes, Redis the last
        ~100,000). If ``after`` is older than the oldest kept event (some after it are gone)
        or unknown to this store, awaiting raises ``EventsExpiredError`` rather than skip
        silently: re-read the state you need and watch from now."""

    async def create_key(self, key: ApiKey, key_hash: str) -> None:
        """Keep an API key: its public record and the hash of the key (``genqueue.keys``),
        never the key. Atomic. Ids and hashes are unique: a key whose id or hash is already
        stored is refused with ``ValueError`` and nothing is written (random ids from
        :func:`genqueue.keys.new_key` never meet this)."""

    async def key_by_hash(self, key_hash: str) -> ApiKey | None:
        """The key with that hash, revoked or not (the caller refuses revoked ones), or None.
        One indexed lookup: the API calls it for requests whose key is not cached."""

    async def list_keys(self) -> list[ApiKey]:
        """Every key, revoked ones included, newest first (created_at, then id). Keys are
        few and never purged by retention: a revoked key stays listed as revoked."""

    async def revoke_key(self, key_id: str) -> ApiKey:
        """Mark a key revoked now and return it; a key already revoked keeps its first
        ``revoked_at``. Idempotent. ``KeyNotFoundError`` for an unknown id."""

    async def aclose(self) -> None:
        """Release connections; the store is unusable afterwards."""


class QuotaStore(Protocol):
    """The store's side of submit quotas (``Store.quotas``): one atomic window per key and
    cheap bounded counts; ``genqueue/api/quotas.py`` decides what they mean."""

    async def spend(self, key_id: str, tasks: int, per_window: int, window_s: float) -> QuotaWindow:
        """Count ``tasks`` submits against ``key_id``'s window if they fit: atomically, when
        the count of the current window (``floor(store clock / window_s)``; a new window
        starts at 0) plus ``tasks`` is at most ``per_window``, add them (admitted), else
        count nothing (refused). Exact across processes sharing the store: two callers
        never both take the last places. Windows are kept per key for one window at a time
        (a few bytes per key); ``genqueue/api/quotas.py`` decides what a refusal means."""

    async def count_unfinished(self, user: str, upto: int) -> int:
        """How many tasks of ``user`` are queued or running, counted up to ``upto`` (the
        answer is ``min(count, upto)``): cheap whatever the store holds (an index of
        unfinished tasks per user read at most ``upto`` deep, or a counter kept by every
        status change). Read only, not atomic with a later submit."""

    async def count_queued(self, queue: str, upto: int) -> int:
        """How many tasks of ``queue`` are queued (parked and not yet due included), up to
        ``upto`` (``min(count, upto)``), from the store's per-queue counts or an index read
        at most ``upto`` deep. Read only, not atomic with a later submit."""


class WebhookStore(Protocol):
    """The store's webhook deliveries (``Store.webhooks``): rows owed by the pumps of every
    API process, taken and recorded by their senders (genqueue/webhooks/)."""

    async def add(self, deliveries: Sequence[WebhookDelivery]) -> list[str]:
        """Keep webhook deliveries owed (state ``pending``, due now), each inserted only if no
        delivery with its id exists, atomically per delivery: several API processes following
        the same events make one row per id. Returns the ids this call created."""

    async def take(self, limit: int, hold_s: float) -> list[WebhookDelivery]:
        """Atomically take up to ``limit`` pending deliveries that are due, oldest due first,
        and hold them (due again ``hold_s`` from now), as :meth:`take_outbox` does: another
        sender does not take them meanwhile; if this one dies they are due again after."""

    async def record_attempt(
        self, delivery_id: str, attempt: WebhookAttempt, state: DeliveryState, retry_in_s: float
    ) -> bool:
        """Append ``attempt`` to a pending delivery's log, count it, and set its ``state``:
        ``pending`` is due again ``retry_in_s`` from now (the store's clock), the others are
        final (no next attempt). Atomic. False (nothing written) if the delivery is unknown or
        no longer pending: a final state is never undone by a late sender."""

    async def deliveries(
        self, *, task_id: str | None = None, batch_id: str | None = None
    ) -> list[WebhookDelivery]:
        """The deliveries of a task (``task_id``) or of a batch (``batch_id``: batch.finished
        and its tasks' events), oldest first, with their attempts. Read only."""

    async def pending(self) -> int:
        """How many deliveries are pending (for the metrics). Read only, one count."""

    async def cursor(self) -> str | None:
        """The id of the last event the webhook pumps have turned into deliveries (None
        before the first): where a pump starting again resumes :meth:`watch`."""

    async def save_cursor(self, event_id: str) -> None:
        """Keep ``event_id`` as :meth:`cursor`. Last writer wins: a pump saves only
        ids it has handled with all before them, and handling is idempotent, so a cursor
        moved back by a slower pump only repeats work."""


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
