"""Worker: consume -> claim -> execute -> finish -> ack, with heartbeats and a clean stop.

Delivery and truth are kept apart: a delivery is only a hint that a task may be ready. The
store's atomic claim decides whether this worker runs it, the lease keeps everyone else off it
while the heartbeat renews it, and the delivery is acknowledged only after the outcome is
recorded, so a worker killed at any point leaves either an unacknowledged delivery or an
expiring lease behind, and the task runs again elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from genqueue.aio import stop_tasks
from genqueue.artifacts import ArtifactStore
from genqueue.contracts import (
    Broker,
    Cancelled,
    Claim,
    Delivery,
    Failed,
    Requeue,
    Store,
    Succeeded,
    Throttled,
    Waiting,
)
from genqueue.dispatch import Dispatcher
from genqueue.errors import (
    OUTAGE_ERRORS,
    ConfigError,
    LeaseLostError,
    TaskNotFoundError,
    UnknownKindError,
)
from genqueue.inputs import InputReader
from genqueue.kinds import KindRegistry
from genqueue.models import TaskStatus, WorkerInfo, utcnow
from genqueue.resources import Resources
from genqueue.settings import Settings
from genqueue.sweeper import Sweeper
from genqueue.warm import WarmModels
from genqueue.worker.affinity import DEFER_S, LOOKAHEAD, Affinity, Deferred
from genqueue.worker.batching import Batcher
from genqueue.worker.capacity import Capacity
from genqueue.worker.execution import Execution, StopReason
from genqueue.worker.health import Backoff, GaveUpError, Reachability
from genqueue.worker.heartbeat import flush_progress, heartbeat, renew_leases
from genqueue.worker.procpool import ProcessPool

log = logging.getLogger(__name__)

RETRY_HANDLING_S = 1.0  # a delivery whose handling failed unexpectedly comes back after this
SHUTDOWN_RECORD_S = 5.0  # after the grace, how long stopped runs may wait for the store
STOP_REPORT_S = 5.0
T = TypeVar("T")


class Worker:
    """One worker process's run loop over some queues."""

    def __init__(
        self,
        *,
        store: Store,
        broker: Broker,
        kinds: KindRegistry,
        artifacts: ArtifactStore,
        settings: Settings,
        queues: Sequence[str] | None = None,
        concurrency: int | None = None,
        name: str | None = None,
        preload: bool = False,
        slots: Mapping[str, int] | None = None,
    ) -> None:
        self.store = store
        self.broker = broker
        self.kinds = kinds
        self.settings = settings
        self.concurrency = concurrency or settings.worker.concurrency
        self._capacity = Capacity(settings.worker.slots if slots is None else slots)
        self._needs = {k.name: dict(k.slots) for k in kinds}
        self.queues = self._servable(list(queues or kinds.queues()))
        if not self.queues:
            raise ConfigError(
                f"no queue this worker can serve with slots {self._capacity.totals or '{}'}"
                " (see the warnings above; --slots gives a worker capacities, e.g. gpu=1)"
            )
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self.id = f"{self.name}-{uuid.uuid4().hex[:6]}"
        self._artifacts = artifacts
        self._inputs = InputReader(
            artifacts.root_url,
            str(settings.input_root) if settings.input_root else None,
            settings.max_image_pixels,
        )
        self._resources = Resources(settings)
        self._preload = preload
        mine = [k for k in kinds if k.queue in self.queues]
        process_kinds = [k.import_path for k in mine if k.executor == "process"]
        self._pool = ProcessPool(
            settings.worker.process_pool, settings, preload=process_kinds if preload else []
        )
        self._preloaded = [r for k in mine if k.executor != "process" for r in k.all_resources]
        # Affinity only where this worker loads models: it leaves tasks to workers holding
        # theirs warm, in the queues of its kinds that name a model.
        self._model_queues = {k.queue for k in mine if k.models is not None}
        capacity = settings.worker.warm_models
        self._affinity = Affinity(self.id, settings.worker.affinity_wait_s, capacity)
        self._warm = WarmModels(settings, capacity, unload_first=self._affinity.shared)
        self._dispatcher = Dispatcher(store, broker, kinds, settings.fair_weights)
        self._sweeper = Sweeper(self._dispatcher, artifacts, settings)
        self._slots = asyncio.Semaphore(self.concurrency)
        self._batchers = {
            k.name: Batcher(k, functools.partial(self._slot, k.name))
            for k in mine
            if k.batching is not None
        }
        self._running: dict[str, Execution] = {}
        self._handlers: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        self._hard_stop = asyncio.Event()
        self._store_health = Reachability("store", store.ping)
        self._broker_health = Reachability("broker", broker.ping)
        self.succeeded = 0
        self.failed = 0

    @property
    def degraded(self) -> str | None:
        """Why this worker cannot work now (a backend it cannot reach), or None."""
        reasons = [h.reason for h in (self._store_health, self._broker_health) if h.reason]
        return "; ".join(reasons) or None

    def stop(self) -> None:
        """First call: stop taking work and let in-flight tasks finish (up to the grace
        period). Second call: requeue in-flight tasks now."""
        if self._stopping.is_set():
            self._hard_stop.set()
        self._stopping.set()

    async def run(self) -> None:
        """Run until :meth:`stop`; returns when every in-flight task is recorded or requeued.
        An outage of the store or broker pauses it; only a stop or a configuration error (a
        consumer that cannot consume at all) ends it."""
        info = WorkerInfo(
            id=self.id,
            name=self.name,
            host=socket.gethostname(),
            pid=os.getpid(),
            queues=self.queues,
            concurrency=self.concurrency,
            started_at=utcnow(),
            last_seen=utcnow(),
        )
        await self._store_health.call(lambda: self.store.register_worker(info), self._stopping)
        limits = {k.resource: self.settings.limit_for(k.resource) for k in self.kinds if k.resource}
        if limits:
            await self._store_health.call(
                lambda: self.store.configure_limits(limits), self._stopping
            )
        if self._preload:
            # Models loaded before the first task, not inside it: a warm worker from the start.
            await self._resources.ready(self._preloaded)
            await self._pool.start()
        log.info("worker %s consuming %s (concurrency %d)", self.id, self.queues, self.concurrency)
        settings = self.settings
        background = [
            asyncio.create_task(
                heartbeat(
                    self._store_health,
                    self._report,
                    self._broker_health,
                    every_s=settings.heartbeat_s,
                )
            ),
            asyncio.create_task(
                flush_progress(lambda: list(self._running.values()), self._store_health)
            ),
            asyncio.create_task(self._sweeper.run()),
        ]
        consumers = [asyncio.create_task(self._consume(*c)) for c in self._consumers()]
        for consumer in consumers:
            # A consumer that dies (a queue declared with other arguments, say) stops the
            # worker, which then reports why instead of idling with nothing to consume.
            consumer.add_done_callback(lambda _: self._stopping.set())
        failure: BaseException | None = None
        try:
            await self._stopping.wait()
        finally:
            # Cancelled until they end: a cancellation swallowed inside redis-py kept a
            # consumer (and the worker) running after SIGTERM (CI: test_shutdown[redis]).
            await stop_tasks(*consumers)
            for consumer in consumers:
                if not consumer.cancelled() and consumer.exception() is not None:
                    failure = failure or consumer.exception()
            await self._drain()
            for batcher in self._batchers.values():
                await batcher.aclose()
            await stop_tasks(*background)
            await self._pool.aclose()
            await self._resources.aclose()
            await self._warm.aclose()
            for health in (self._store_health, self._broker_health):
                await health.aclose()
            try:
                await asyncio.wait_for(self.store.stop_worker(self.id), STOP_REPORT_S)
            except OUTAGE_ERRORS:
                log.warning("worker %s stopped; the store did not hear of it", self.id)
            log.info("worker %s stopped", self.id)
        if failure is not None:
            raise failure

    async def _report(self) -> None:
        """One heartbeat: renew every lease, then refresh this worker's registry entry."""
        running = list(self._running.values())
        await renew_leases(self.store, running, self.settings.lease_s)
        await self.store.heartbeat_worker(
            self.id,
            [e.task.id for e in running],
            self.succeeded,
            self.failed,
            degraded=self.degraded,
            models=self._warm.names(),
        )
        if self._model_queues:
            self._affinity.update(await self.store.list_workers())

    def _servable(self, queues: list[str]) -> list[str]:
        """The queues whose every kind this worker has the capacity for (``--slots``): a
        worker without a GPU leaves GPU kinds to the workers that have one."""
        servable = []
        for queue in queues:
            missing = {
                k.name: self._capacity.missing(dict(k.slots))
                for k in self.kinds
                if k.queue == queue and self._capacity.missing(dict(k.slots))
            }
            if missing:
                log.warning("not serving queue %s: this worker lacks %s", queue, missing)
            else:
                servable.append(queue)
        return servable

    def _queue_need(self, queues: list[str]) -> dict[str, int]:
        """The most any kind of ``queues`` takes of each capacity: what a delivery of theirs
        takes before its claim, when its kind is not known yet."""
        need: dict[str, int] = {}
        for k in self.kinds:
            if k.queue in queues:
                for name, n in k.slots:
                    need[name] = max(need.get(name, 0), n)
        return need

    @contextlib.asynccontextmanager
    async def _slot(self, kind_name: str) -> AsyncIterator[None]:
        """One of the worker's ``concurrency`` slots and the kind's capacities, for a batch."""
        held = _Held(self._slots, self._capacity)
        try:
            await held.take(self._needs.get(kind_name, {}))
            yield
        finally:
            held.release()

    def _consumers(self) -> list[tuple[list[str], int, bool]]:
        """(queues, prefetch, whether a slot comes before the claim) of each consumer.

        Queues of batched kinds get one of their own, holding enough messages to fill their
        batches, and claiming as messages come (a slot per task would cap a batch at the
        concurrency, and a running batch would stop the next one from gathering); a task of
        an unbatched kind found there waits for a slot after its claim. The other queues'
        prefetch, and with it how much work this worker keeps from the others, stays as
        configured, and there a slot comes first."""
        prefetch = self.concurrency + self.settings.worker.prefetch
        batched = {b.kind.queue for b in self._batchers.values()}
        room = sum(b.policy.max_size for b in self._batchers.values())
        plain = [q for q in self.queues if q not in batched]
        groups: list[tuple[list[str], int, bool]] = []
        by_need: dict[tuple[tuple[str, int], ...], list[str]] = {}
        for queue in plain:  # one consumer per capacity need, so a need waits only for its own
            by_need.setdefault(tuple(sorted(self._queue_need([queue]).items())), []).append(queue)
        groups += [(qs, prefetch, True) for qs in by_need.values()]
        groups.append((sorted(batched), prefetch + room, False))
        return [group for group in groups if group[0]]

    async def _consume(self, queues: list[str], prefetch: int, slot_first: bool) -> None:
        """Take deliveries while the backends answer; through an outage, close the consumer,
        wait with backoff until the broker answers, and open a new one."""
        broker = self._broker_health
        backoff = Backoff()
        need = self._queue_need(queues)
        while True:
            try:
                if not broker.reachable.is_set():
                    await broker.reachable.wait()
                # Closed here, not whenever the loop gets round to it: what the broker fetched
                # but never handed out goes back while the broker connection is still open.
                deliveries = self.broker.consume(queues, prefetch)
                async with contextlib.aclosing(deliveries):
                    async for delivery in deliveries:
                        backoff.reset()
                        await self._start(delivery, slot_first, need)
                return
            except OUTAGE_ERRORS as exc:
                broker.failed(exc)
                await asyncio.sleep(backoff.next_s())

    async def _start(self, delivery: Delivery, slot_first: bool, need: dict[str, int]) -> None:
        """Run a delivery once a slot and the capacities its queue needs are free
        (``slot_first``), and once the store answers: a worker that cannot reach its store
        holds what it has and takes nothing new."""
        slot = _Held(self._slots, self._capacity)
        try:
            if slot_first:
                await slot.take(need)
            await self._store_health.reachable.wait()
        except asyncio.CancelledError:
            slot.release()
            with contextlib.suppress(*OUTAGE_ERRORS):
                await delivery.nack()  # stopping: hand back what we hold, never started
            raise
        handler = asyncio.create_task(self._handle(delivery, slot))
        self._handlers.add(handler)
        handler.add_done_callback(self._handlers.discard)

    async def _drain(self) -> None:
        """Wait for in-flight runs, up to the grace period (or a second stop); then stop them,
        and give up waiting on a backend that is still down (their leases expire and the
        tasks run again elsewhere)."""
        if not self._handlers:
            return
        log.info("waiting for %d running tasks", len(self._handlers))
        done = asyncio.gather(*self._handlers, return_exceptions=True)
        hard = asyncio.ensure_future(self._hard_stop.wait())
        either: list[asyncio.Future[Any]] = [hard, done]
        await asyncio.wait(
            either,
            timeout=self.settings.worker.shutdown_grace_s,
            return_when=asyncio.FIRST_COMPLETED,
        )
        hard.cancel()
        for execution in list(self._running.values()):
            execution.stop(StopReason.SHUTDOWN)
        try:
            await asyncio.wait_for(asyncio.shield(done), SHUTDOWN_RECORD_S)
        except TimeoutError:
            self._hard_stop.set()
            await done

    async def _handle(self, delivery: Delivery, slot: _Held) -> None:
        try:
            await self._process(delivery, slot)
        except GaveUpError as exc:
            log.warning("%s left to its lease: %s", delivery.task_id, exc)
        except Exception:
            # Not an outage (those are waited out): a bug or a backend answering nonsense.
            # Give the delivery back so it comes again later; if even that fails, the
            # broker's redelivery or the lease brings it back.
            log.exception("handling %s failed", delivery.task_id)
            with contextlib.suppress(Exception):
                await delivery.nack(RETRY_HANDLING_S)
        finally:
            slot.release()

    async def _in_store(self, call: Callable[[], Awaitable[T]]) -> T:
        """A store call that waits out outages, until the worker stops for good."""
        return await self._store_health.call(call, self._hard_stop)

    async def _settle(self, delivery: Delivery, delay_s: float | None = None) -> None:
        """Ack (``delay_s`` None) or nack. A failure is left to the broker: the message
        comes back (visibility timeout, dropped channel) and the store decides again."""
        try:
            await (delivery.ack() if delay_s is None else delivery.nack(delay_s))
        except OUTAGE_ERRORS as exc:
            self._broker_health.failed(exc)

    async def _process(self, delivery: Delivery, slot: _Held) -> None:
        lease_s = self.settings.lease_s
        # The message is a credit for its queue: the store picks the task next in fair order.
        claim = await self._in_store(lambda: self._claim(delivery.queue, lease_s))
        if claim is None:
            await self._not_claimed(delivery)
            return
        if isinstance(claim, Deferred):
            # Left to workers holding their models: the credit comes back when they had time.
            await self._settle(delivery, claim.retry_in_s)
            return
        if isinstance(claim, Waiting):
            # Parked for a permit: the store owes it a message when one is free.
            await self._settle(delivery)
            return
        lease, task = claim.lease, claim.task
        try:
            kind = self.kinds.get(task.kind)
        except UnknownKindError:
            failed = Failed(f"no handler for kind {task.kind!r} here")
            await self._in_store(lambda: self.store.finish(lease, failed))
            await self._settle(delivery)
            return
        batcher = self._batchers.get(kind.name)
        execution = Execution(
            kind=kind,
            task=task,
            lease=lease,
            store=self.store,
            artifacts=self._artifacts,
            inputs=self._inputs,
            settings=self.settings,
            pool=self._pool,
            resources=self._resources,
            batcher=batcher,
            warm=self._warm,
        )
        self._running[task.id] = execution  # its lease is renewed from now on
        try:
            if batcher is not None:
                slot.release()  # it waits in its batch, and the batch takes a slot to run
            else:
                await slot.take(self._needs.get(kind.name, {}))  # no-op when taken already
            outcome = await execution.run()
        finally:
            del self._running[task.id]
        if outcome is None:  # lease lost: the run that owns the task now will record it
            await self._settle(delivery)
            return
        try:
            if not isinstance(outcome, Cancelled):
                await self._in_store(execution.flush_progress)
            recorded = await self._in_store(lambda: self.store.finish(execution.lease, outcome))
        except LeaseLostError:
            log.warning("result of %s not recorded: lease lost", task.id)
            await self._settle(delivery)
            return
        if task.resource is not None:
            await self._pass_permit_on()
        if isinstance(outcome, Requeue | Throttled):
            # The same message comes when due (a throttled task: after the Retry-After).
            due = recorded.not_before.timestamp() if recorded.not_before else time.time()
            await self._settle(delivery, max(0.0, due - time.time()))
            return
        if isinstance(outcome, Succeeded):
            self.succeeded += 1
        else:
            self.failed += 1
        await self._settle(delivery)

    async def _claim(self, queue: str, lease_s: float) -> Claim | Waiting | Deferred | None:
        """The task of ``queue`` next in fair order, unless another worker holds its model
        warm and this one does not: then the next one it should take (affinity.py)."""
        if queue in self._model_queues and self._affinity.on:
            line = await self.store.line(queue, LOOKAHEAD)
            choice = self._affinity.choose(line, self._warm.names())
            if line and choice.tries[:1] != [line[0].task_id]:  # else the head, as usual
                for task_id in choice.tries:
                    claim = await self.store.claim(task_id, self.id, lease_s)
                    if claim is not None:
                        return claim
                if choice.retry_in_s is not None:
                    return Deferred(min(choice.retry_in_s, DEFER_S))
        return await self.store.claim_next(queue, self.id, lease_s)

    async def _pass_permit_on(self) -> None:
        """The permit just freed woke a parked task (its outbox entry is due): publish its
        message now rather than at the next sweep. If this fails, the sweep does it."""
        try:
            await self._sweeper.relay()
        except OUTAGE_ERRORS as exc:
            log.info("relay after a permit was freed failed (%s); the sweep will", exc)

    async def _not_claimed(self, delivery: Delivery) -> None:
        """A credit that found nothing to claim in its queue: if the task it was sent for is
        not due yet (it came early), keep it until then; else every task it could stand
        for is claimed, finished or gone: drop it."""
        try:
            task = await self._in_store(lambda: self.store.get(delivery.task_id))
        except TaskNotFoundError:
            await self._settle(delivery)
            return
        due_in = (task.not_before.timestamp() - time.time()) if task.not_before else 0.0
        if task.status == TaskStatus.QUEUED and due_in > 0:
            await self._settle(delivery, due_in)
        else:
            await self._settle(delivery)


class _Held:
    """One worker slot and some capacities held by a delivery's handling or a batch; released
    once, however often asked (a batched task gives its slot back as soon as it is claimed)."""

    def __init__(self, slots: asyncio.Semaphore, capacity: Capacity) -> None:
        self._slots = slots
        self._capacity = capacity
        self._need: dict[str, int] | None = None

    async def take(self, need: dict[str, int]) -> None:
        if self._need is not None:
            return
        await self._slots.acquire()
        try:
            await self._capacity.take(need)
        except BaseException:
            self._slots.release()
            raise
        self._need = need

    def release(self) -> None:
        if self._need is not None:
            self._capacity.release(self._need)
            self._need = None
            self._slots.release()
