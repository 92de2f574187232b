"""Submit quotas and back-pressure: past a limit, a submit answers 429 with ``Retry-After``
and stores nothing (docs/security.md, "Quotas and back-pressure").

Three limits, checked in this order, each before anything is stored:

- ``queue``: ``GENQUEUE_QUEUE_LIMITS`` bounds the queued tasks of a queue (any submitter);
- ``in_flight``: a key's bound on the queued and running tasks of the user it submits as;
- ``tasks_per_minute``: a key's submits in a fixed window of ``WINDOW_S`` seconds.

A key's figure is its own (``genqueue keys create --tasks-per-minute 600 --in-flight 100``;
0 is unlimited) or, when it has none, ``GENQUEUE_QUOTAS__*`` for role ``user`` only:
operators and admins are limited only by their key's own figures. With auth off there is
no key, so only the queue bounds apply.

The counts live in the store, so every API process sharing it enforces the same limits.
The window is spent last, atomically (:meth:`QuotaStore.spend`): a submit refused by any
limit counts nothing, and concurrent submits never overshoot it. Queue and in-flight bounds
are read (:meth:`QuotaStore.count_queued`, :meth:`QuotaStore.count_unfinished`) and then the tasks
stored, a separate step: submits running at the same moment can each see room for
themselves, so a bound can be overshot by at most the tasks of the submits in progress at
once (in practice a few requests' worth, less than ``max_batch`` x concurrent requests).

Retry-After, whole seconds clamped to ``RETRY_MIN_S..RETRY_MAX_S``:

- ``tasks_per_minute``: the seconds until the window ends (the count starts again then);
- ``queue`` and ``in_flight``: ``ceil(excess / drain)``, ``excess`` the tasks that must
  finish first (current + asked - limit) and ``drain`` the completions per second of the
  queue(s) asked for as the store measures them: the worker slots serving the queue over
  its mean run length (``Store.service_times``, the same figures as the ETA,
  ``genqueue/eta.py``); ``UNMEASURED_S`` when nothing is measured (no live worker serves the
  queue, or no run of it finished yet).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from genqueue.api.auth import Principal
from genqueue.api.estimates import Snapshot
from genqueue.api.runtime import Runtime
from genqueue.dispatch import Dispatcher, TaskRequest
from genqueue.errors import InvalidInputError, QuotaExceededError
from genqueue.models import Role
from genqueue.settings import QuotaSettings

WINDOW_S = 60.0
RETRY_MIN_S = 1
RETRY_MAX_S = 300
UNMEASURED_S = 30  # Retry-After of a bound whose queue has no measured drain rate
FASTEST_RUN_S = 0.001  # a mean run length below this counts as this (no division by ~0)


@dataclass(frozen=True)
class KeyQuota:
    """What one caller may submit; None: unlimited."""

    tasks_per_minute: int | None = None
    in_flight: int | None = None


def key_quota(caller: Principal, defaults: QuotaSettings) -> KeyQuota:
    """The caller's limits: the key's own figure (0: unlimited), else the deployment's
    default for role ``user`` (None or 0: unlimited); none without a key (auth off)."""
    if caller.key_id is None:
        return KeyQuota()

    def pick(own: int | None, default: int | None) -> int | None:
        if own is not None:
            return own or None
        return (default or None) if caller.role == Role.USER else None

    return KeyQuota(
        pick(caller.tasks_per_minute, defaults.tasks_per_minute),
        pick(caller.in_flight, defaults.in_flight),
    )


def clamp_s(seconds: float) -> int:
    """Whole seconds for ``Retry-After``, within ``RETRY_MIN_S..RETRY_MAX_S``."""
    return max(RETRY_MIN_S, min(RETRY_MAX_S, math.ceil(seconds)))


def drain_per_s(snapshot: Snapshot, queues: Sequence[str]) -> float | None:
    """Completions per second of ``queues`` together: each measured queue's worker slots
    over its mean run length; None when none of them is measured."""
    rates = []
    for queue in set(queues):
        capacity = snapshot.capacity.get(queue)
        if capacity is not None and capacity.slots > 0 and capacity.mean_s is not None:
            rates.append(capacity.slots / max(capacity.mean_s, FASTEST_RUN_S))
    return sum(rates) if rates else None


def drain_wait_s(excess: int, per_s: float | None) -> int:
    """Seconds until ``excess`` tasks have finished at ``per_s`` completions per second."""
    if per_s is None or per_s <= 0:
        return UNMEASURED_S
    return clamp_s(excess / per_s)


def _queues(dispatcher: Dispatcher, requests: Sequence[TaskRequest]) -> list[str] | None:
    """The queue of each request, as the dispatcher will resolve it; None if any request is
    invalid (the dispatcher refuses it with 422 naming the field, so nothing is counted)."""
    try:
        return [dispatcher.prepare(request).queue for request in requests]
    except InvalidInputError:
        return None


async def admit(runtime: Runtime, caller: Principal, requests: Sequence[TaskRequest]) -> None:
    """Let ``requests`` (one submit: a task, or a batch counted whole) through, or raise
    :class:`QuotaExceededError` (429) naming the limit. Call it right before the dispatcher
    stores them: an admitted submit has spent its places in the window."""
    quota = key_quota(caller, runtime.settings.quotas)
    bounds = runtime.settings.queue_limits
    if not requests or not (bounds or quota.in_flight or quota.tasks_per_minute):
        return
    queues = _queues(runtime.dispatcher, requests)
    if queues is None:
        return
    store, asked = runtime.store, len(requests)
    for queue, n in sorted(Counter(queues).items()):
        bound = bounds.get(queue)
        if bound is None:
            continue
        current = await store.quotas.count_queued(queue, bound)
        if current + n > bound:
            split = "; more than the bound itself: split it" if n > bound else ""
            raise QuotaExceededError(
                f"queue {queue!r} holds {current} queued tasks and takes at most {bound};"
                f" this submit adds {n}{split}",
                "queue",
                await _drain_wait(runtime, current + n - bound, [queue]),
                allowed=bound,
                current=current,
                requested=n,
                queue=queue,
            )
    if quota.in_flight:
        per_user = Counter(r.user for r in requests if r.user is not None)
        for user, n in sorted(per_user.items()):
            limit = quota.in_flight
            current = await store.quotas.count_unfinished(user, limit)
            if current + n > limit:
                raise QuotaExceededError(
                    f"user {user!r} has {current} tasks queued or running and this key allows"
                    f" {limit} in flight; this submit adds {n}",
                    "in_flight",
                    await _drain_wait(runtime, current + n - limit, queues),
                    allowed=limit,
                    current=current,
                    requested=n,
                )
    if quota.tasks_per_minute and caller.key_id is not None:
        limit = quota.tasks_per_minute
        window = await store.quotas.spend(caller.key_id, asked, limit, WINDOW_S)
        if not window.admitted:
            split = "; more than the limit itself: split it" if asked > limit else ""
            raise QuotaExceededError(
                f"this key may submit {limit} tasks per minute: {window.used} so far in this"
                f" minute, this submit asks for {asked}{split}",
                "tasks_per_minute",
                clamp_s(window.resets_in_s),
                allowed=limit,
                current=window.used,
                requested=asked,
            )


async def _drain_wait(runtime: Runtime, excess: int, queues: Sequence[str]) -> int:
    return drain_wait_s(excess, drain_per_s(await runtime.estimator.snapshot(), queues))
