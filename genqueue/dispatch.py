"""Dispatcher: the one write path that creates work. Store first, then publish.

The API, the CLI and the compat routes all go through here, so "a task exists in the store
before any worker can see it" holds everywhere. The store writes each new task's outbox entry
in the same atomic step, so a task is accepted once it is stored: if the broker is down, or
this process dies before publishing, the sweeper's relay publishes it later (``sweeper.py``).
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from genqueue.backends.group import GroupCall
from genqueue.contracts import Broker, Message, Store
from genqueue.errors import (
    OUTAGE_ERRORS,
    FieldProblem,
    IdempotencyConflictError,
    InvalidInputError,
)
from genqueue.faults import AFTER_STORE_SUBMIT, crash_point
from genqueue.kinds import KindRegistry
from genqueue.models import Batch, NewTask, Task, utcnow
from genqueue.result_cache import cache_key
from genqueue.webhooks.records import WebhookTarget

log = logging.getLogger(__name__)

PRIORITY_RANGE = (-1000, 1000)
PUBLISH_FAILURES: tuple[type[Exception], ...] = (*OUTAGE_ERRORS, OSError)


def new_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class TaskRequest:
    """What a caller asks for; validated by :meth:`Dispatcher.prepare`."""

    kind: str
    payload: dict[str, Any] = field(default_factory=dict)
    user: str | None = None
    priority: int = 0
    queue: str | None = None
    idempotency_key: str | None = None
    not_before: datetime | None = None  # delayed or scheduled: not started before this
    start_by: datetime | None = None  # not started by then: ends expired, never runs late
    cancel_after_s: float | None = None  # a run longer than this is stopped (cancelled)
    webhook: WebhookTarget | None = None  # checked by genqueue.webhooks.targets at submit


class Dispatcher:
    """Creates, cancels and re-queues tasks: validated, stored, then published."""

    def __init__(
        self,
        store: Store,
        broker: Broker,
        kinds: KindRegistry,
        weights: Mapping[str, float] | None = None,
    ) -> None:
        self.store = store
        self.broker = broker
        self.kinds = kinds
        self.weights = dict(weights or {})  # fair share per user (Settings.fair_weights)
        self._clear = GroupCall(self._send_clear)

    def prepare(self, request: TaskRequest, *, batch_id: str | None = None) -> NewTask:
        """Validate a request against its kind; raise ``InvalidInputError`` naming the field."""
        kind = self.kinds.get(request.kind)
        payload = kind.validate_payload(request.payload).model_dump(mode="json")
        low, high = PRIORITY_RANGE
        problems = []
        if not low <= request.priority <= high:
            problems.append(FieldProblem("priority", f"must be between {low} and {high}"))
        problems += _deadline_problems(request)
        if problems:
            raise InvalidInputError(problems)
        return NewTask(
            id=new_id(),
            kind=kind.name,
            queue=request.queue or kind.queue,
            payload=payload,
            user=request.user,
            priority=request.priority,
            batch_id=batch_id,
            idempotency_key=request.idempotency_key,
            max_attempts=kind.retry.max_attempts,
            resource=kind.resource_of(payload),
            model=kind.model_of(payload),
            cache_key=cache_key(kind, payload),
            not_before=request.not_before,
            start_by=request.start_by,
            cancel_after_s=request.cancel_after_s,
            webhook=request.webhook,
            weight=self.weights.get(request.user or "", 1.0),
        )

    async def submit(self, request: TaskRequest) -> tuple[Task, bool]:
        """Store and publish one task. Returns ``(task, created)``; a replayed idempotency
        key returns the original task with ``created=False``."""
        new = self.prepare(request)
        [(task, created)] = await self.store.submit([new])
        if not created:
            if task.kind != new.kind or task.payload != new.payload or task.user != new.user:
                raise IdempotencyConflictError(
                    f"idempotency key {request.idempotency_key!r} was used for another"
                    f" request (task {task.id})"
                )
            return task, False
        await self._publish_new([task])
        return task, True

    async def submit_batch(
        self, requests: list[TaskRequest], user: str | None, webhook: WebhookTarget | None = None
    ) -> tuple[Batch, list[Task]]:
        """Store a batch and all its tasks atomically (all or none), then publish them."""
        batch_id = new_id()
        problems: list[FieldProblem] = []
        prepared: list[NewTask] = []
        for i, request in enumerate(requests):
            try:
                prepared.append(
                    self.prepare(
                        TaskRequest(**{**request.__dict__, "user": request.user or user}),
                        batch_id=batch_id,
                    )
                )
            except InvalidInputError as exc:
                problems += [FieldProblem(f"tasks.{i}.{p.field}", p.message) for p in exc.problems]
        if problems:
            raise InvalidInputError(problems)
        batch = Batch(
            id=batch_id, user=user, created_at=utcnow(), size=len(prepared), webhook=webhook
        )
        results = await self.store.submit(prepared, batch=batch)
        tasks = [task for task, created in results if created]
        await self._publish_new(tasks)
        return await self.store.get_batch(batch_id), [task for task, _ in results]

    async def _publish_new(self, tasks: list[Task]) -> None:
        crash_point(AFTER_STORE_SUBMIT)
        if not tasks:
            return
        try:
            await self.broker.publish([_message(t) for t in tasks])
        except PUBLISH_FAILURES as exc:
            log.warning("broker unavailable (%s): %d task(s) wait in the outbox", exc, len(tasks))
            return
        # If this fails the relay publishes them once more later: harmless, claims fence it.
        with contextlib.suppress(*OUTAGE_ERRORS):
            await self._clear(*[t.id for t in tasks])

    async def _send_clear(self, calls: list[Sequence[Any]]) -> list[Any]:
        """Outbox entries of submits that published while one clear was on the wire go
        together in the next (group.py)."""
        await self.store.clear_outbox([task_id for call in calls for task_id in call])
        return [None] * len(calls)

    async def cancel(self, task_id: str) -> Task:
        return await self.store.cancel(task_id)

    async def cancel_batch(self, batch_id: str) -> Batch:
        return await self.store.cancel_batch(batch_id)


def _message(task: Task) -> Message:
    """A new task's message, held back by the broker until its ``not_before``."""
    delay_s = 0.0
    if task.not_before is not None:
        delay_s = max(0.0, (task.not_before - utcnow()).total_seconds())
    return Message(task.queue, task.id, task.priority, delay_s)


def _deadline_problems(request: TaskRequest) -> list[FieldProblem]:
    """Deadlines that could never be met, named by field."""
    problems = []
    now = utcnow()
    for name in ("not_before", "start_by"):
        value: datetime | None = getattr(request, name)
        if value is not None and value.tzinfo is None:
            problems.append(FieldProblem(name, "needs a time zone (e.g. 2026-12-01T12:00:00Z)"))
    if problems:
        return problems
    if request.start_by is not None:
        if request.start_by <= now:
            problems.append(FieldProblem("start_by", "is already past"))
        elif request.not_before is not None and request.start_by <= request.not_before:
            problems.append(FieldProblem("start_by", "must be after the scheduled start"))
    if request.cancel_after_s is not None and request.cancel_after_s <= 0:
        problems.append(FieldProblem("cancel_after_s", "must be more than 0 seconds"))
    return problems
