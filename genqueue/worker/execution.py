"""Execution: one run of one claimed task under its lease.

It runs the handler where its kind says (event loop, thread, or killable process), under the
kind's timeout, keeps the latest progress for the worker's flusher to send, and turns what
happened into an ``Outcome`` for the store. It can be stopped from outside for three reasons,
each with its own outcome: cancellation (``Cancelled``), a lost lease (nothing is recorded:
the lease is no longer ours) and shutdown (``Requeue`` with the attempt refunded).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any, TypeVar

from genqueue.artifacts import ArtifactStore
from genqueue.contracts import (
    Cancelled,
    Failed,
    Lease,
    Outcome,
    Requeue,
    Store,
    Succeeded,
    Throttled,
)
from genqueue.errors import (
    OUTAGE_ERRORS,
    ForbiddenPathError,
    InvalidInputError,
    LeaseLostError,
    RateLimited,
    Retry,
)
from genqueue.inputs import InputReader
from genqueue.kinds import Kind, check_event
from genqueue.models import EventType, Progress, Task
from genqueue.previews import Preview, PreviewThrottle
from genqueue.resources import Resource, ResourceNotReadyError, Resources
from genqueue.settings import Settings, load_settings
from genqueue.warm import WarmModels
from genqueue.worker.batching import Batcher
from genqueue.worker.procpool import Job, ProcessPool, TaskCancelledError

log = logging.getLogger(__name__)
T = TypeVar("T")


MAX_PENDING_EVENTS = 1000


class StopReason(Enum):
    CANCEL = "cancel"
    LEASE_LOST = "lease lost"
    SHUTDOWN = "shutdown"


@dataclass
class LocalContext:
    """TaskContext for handlers on the event loop or in a thread."""

    task_id: str
    attempt: int
    artifacts: ArtifactStore
    inputs: InputReader
    # A test or bench that builds a context by hand gets the environment's settings.
    settings: Settings = field(default_factory=load_settings)
    resources: Resources | None = None  # the worker's; set up before the handler runs
    latest: Progress | None = None
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    _cancelled: threading.Event = field(default_factory=threading.Event)
    previews: PreviewThrottle = field(default_factory=PreviewThrottle)
    loaded_model: Any = None  # the task's model (Kind.models), held for the run
    preview_ready: Preview | None = None  # the newest preview the flusher has not sent

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def progress(self, fraction: float, message: str = "") -> None:
        if self._cancelled.is_set():
            raise TaskCancelledError(self.task_id)
        self.latest = Progress(fraction=min(1.0, max(0.0, fraction)), message=message)
        if (due := self.previews.due()) is not None:
            self.preview_ready = due

    def save_artifact(self, name: str, data: bytes, content_type: str) -> str:
        return self.artifacts.save(self.task_id, name, data)

    def resource(self, wanted: Resource[T]) -> T:
        if self.resources is None:
            raise ResourceNotReadyError(f"resource {wanted.name!r}: no resources here")
        return self.resources.get(wanted)

    def model(self) -> Any:
        if self.loaded_model is None:
            raise ResourceNotReadyError("no model here: the kind declares model= and models=")
        return self.loaded_model

    def emit(self, event_type: str, data: dict[str, Any]) -> None:
        check_event(event_type, data)
        if len(self.events) >= MAX_PENDING_EVENTS:
            log.warning(
                "task %s: events arrive faster than they are sent; dropped one", self.task_id
            )
            return
        self.events.append((event_type, data))

    def preview(self, image: Any) -> None:
        # Encoded here (the handler's thread) only when the throttle sends it; a Preview from
        # a pool process (ProcessPool relays them) was throttled there and goes as it is.
        if (made := self.previews.offer(image)) is not None:
            self.preview_ready = made


class Execution:
    """Runs one task; ``stop(reason)`` ends it early."""

    def __init__(
        self,
        *,
        kind: Kind,
        task: Task,
        lease: Lease,
        store: Store,
        artifacts: ArtifactStore,
        inputs: InputReader,
        settings: Settings,
        pool: ProcessPool,
        resources: Resources,
        batcher: Batcher | None = None,
        warm: WarmModels | None = None,
    ) -> None:
        self.kind = kind
        self.task = task
        self.lease = lease
        self._store = store
        self._artifacts = artifacts
        self._pool = pool
        self._resources = resources
        self._batcher = batcher
        self._warm = warm
        self.batch_size: int | None = None  # the size of the batch it ran in, if batched
        self._ctx = LocalContext(task.id, lease.attempt, artifacts, inputs, settings, resources)
        self._runner: asyncio.Task[Any] | None = None
        self.stop_reason: StopReason | None = None
        self.done = False  # the run has an outcome; its lease is about to be released

    def stop(self, reason: StopReason) -> None:
        """End the run early; the first reason given wins."""
        if self.stop_reason is not None:
            return
        self.stop_reason = reason
        self._ctx._cancelled.set()
        if self._runner is not None:
            self._runner.cancel()

    def _batch_started(self, size: int) -> None:
        self.batch_size = size

    async def run(self) -> Outcome | None:
        """Run to an outcome; None when the lease was lost (nothing may be recorded).
        Progress is sent by the worker's one flusher loop (``flush_progress``); the worker
        sends what is left of it before it records the outcome."""
        try:
            outcome = await self._outcome()
        finally:
            self.done = True
        if self.batch_size is not None and isinstance(outcome, Succeeded | Failed | Requeue):
            outcome = replace(outcome, batch_size=self.batch_size)
        return outcome

    async def _outcome(self) -> Outcome | None:
        kind = self.kind
        cancel_after_s = self.task.cancel_after_s
        # The task's own run deadline when it comes before the kind's timeout.
        by_deadline = cancel_after_s is not None and cancel_after_s < kind.timeout_s
        try:
            async with contextlib.AsyncExitStack() as held:
                # Loading is the worker's cost, not the run's: outside its timeout.
                await self._load(held)
                async with asyncio.timeout(cancel_after_s if by_deadline else kind.timeout_s):
                    self._runner = asyncio.create_task(self._call())
                    if self.stop_reason is not None:
                        self._runner.cancel()
                    result = await self._runner
            return Succeeded(kind.dump_result(result))
        except (asyncio.CancelledError, TaskCancelledError):
            if self.stop_reason is None:
                raise  # the worker itself is being cancelled
            return self._stopped_outcome()
        except TimeoutError:
            if by_deadline:
                return Cancelled(f"still running after its cancel_after_s ({cancel_after_s:g} s)")
            return self._failure(f"timed out after {kind.timeout_s:g} s")
        except RateLimited as exc:
            # An upstream said "not now": try again later without spending an attempt; the
            # store cuts the shared limit of the resource (and honours its Retry-After).
            delay = exc.delay_s if exc.delay_s is not None else kind.retry.delay_s(1)
            return Throttled(delay, f"rate limited: {exc}", exc.retry_after_s)
        except Retry as exc:
            return self._failure(str(exc), exc.delay_s)
        except (InvalidInputError, ForbiddenPathError) as exc:
            return Failed(f"invalid input: {exc}")  # another attempt would fail the same way
        except Exception as exc:
            if self.stop_reason is not None:
                return self._stopped_outcome()
            log.warning("task %s (%s) failed: %r", self.task.id, kind.name, exc)
            return self._failure(f"{type(exc).__name__}: {exc}")

    async def _load(self, held: contextlib.AsyncExitStack) -> None:
        """Make ready what the run needs loaded: the kind's resources (a pool process sets up
        its own) and the task's model, held until the run ends."""
        kind, model = self.kind, self.task.model
        if kind.executor != "process":
            await self._resources.ready(kind.resources_for(self.task.payload))
        if kind.models is not None and model is not None and self._warm is not None:
            self._ctx.loaded_model = await held.enter_async_context(
                self._warm.use(kind.models, model)
            )

    def _stopped_outcome(self) -> Outcome | None:
        match self.stop_reason:
            case StopReason.CANCEL:
                return Cancelled("cancelled while running")
            case StopReason.SHUTDOWN:
                return Requeue(delay_s=0.0, error="worker shut down", refund=True)
            case _:
                return None

    def _failure(self, error: str, delay_s: float | None = None) -> Outcome:
        """Retry with backoff while the kind's policy allows, else fail for good."""
        policy = self.kind.retry
        if not policy.allows_another(self.lease.attempt):
            return Failed(error)
        delay = delay_s if delay_s is not None else policy.delay_s(self.lease.attempt)
        return Requeue(delay_s=delay, error=error)

    async def _call(self) -> Any:
        kind = self.kind
        if kind.executor == "process":
            job = Job(
                kind.import_path,
                self.task.payload,
                self.task.id,
                self.lease.attempt,
                self._artifacts.root_url,
                self._ctx.inputs,
                self._ctx.settings,
            )
            return await self._pool.run(job, self._ctx)
        payload = kind.payload_model.model_validate(self.task.payload)
        if self._batcher is not None:
            return await self._batcher.run(payload, self._ctx, self._batch_started)
        if kind.executor == "async":
            return await kind.handler(payload, self._ctx)
        # A thread cannot be killed: cancellation is cooperative through ctx.progress.
        return await asyncio.to_thread(kind.handler, payload, self._ctx)

    async def flush_progress(self) -> None:
        """Send the events raised, the newest preview and the latest progress, if any, since
        the last call.

        A lost lease stops the run. In a store outage what was not sent is kept for the next
        call (the error is raised for the caller to wait the outage out), so no event is lost
        and none is sent twice."""
        latest, self._ctx.latest = self._ctx.latest, None
        events, self._ctx.events = self._ctx.events, []
        preview = await self._take_preview()
        sent = 0
        try:
            for event_type, data in events:
                await self._store.add_event(self.lease, event_type, data)
                sent += 1
            if preview is not None:
                await self._store.add_event(self.lease, EventType.PREVIEW, preview.event_data())
                preview = None
            if latest is not None:
                await self._store.set_progress(self.lease, latest)
        except LeaseLostError:
            self.stop(StopReason.LEASE_LOST)
        except OUTAGE_ERRORS:
            self._ctx.events[:0] = events[sent:]
            if self._ctx.latest is None:
                self._ctx.latest = latest
            if self._ctx.preview_ready is None:
                self._ctx.preview_ready = preview
            raise
        except Exception:
            log.exception("progress of %s not recorded", self.task.id)

    async def _take_preview(self) -> Preview | None:
        """The newest preview to send: the one ready; else the one waiting for its time once
        that has come, so a handler busy with a long step without calling the context still
        shows its last picture; once the run is over, the one waiting, which is newer. Those
        two are encoded off the event loop."""
        ready, self._ctx.preview_ready = self._ctx.preview_ready, None
        previews = self._ctx.previews
        if previews.waiting and (self.done or ready is None):
            return await asyncio.to_thread(previews.flush if self.done else previews.due) or ready
        return ready
