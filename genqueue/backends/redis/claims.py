"""Claims on Redis: of one named task (``Store.claim``, ``claim.lua``) and of the task of a
queue next in fair order (``Store.claim_next``, ``claim_next.lua``; the order's keys are in
``fair.lua``). Both travel in groups (``genqueue.backends.group``): a busy worker's claims
share one script call.

A claim of a task with a limited resource needs what :mod:`genqueue.limiter` computes from the
resource's limiter (see ``limits.py``). ``claim_next`` keeps the limiters it has seen and
sends their gates with every call, the recovery due by now included, so a queue with limited
tasks costs one round trip once its limiters are known; the script uses a gate only if its
version is still the limiter's, and otherwise answers with the limiter as it is now.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from typing import Any

from genqueue.backends.group import GroupCall
from genqueue.backends.redis import scripts
from genqueue.backends.redis.limits import CAS_TRIES, NO_GATE, Run, Seen, exhausted
from genqueue.backends.redis.records import task_from
from genqueue.contracts import Claim, Lease, Waiting
from genqueue.limiter import load_state
from genqueue.models import Task, from_epoch


class RedisClaims:
    """``claim`` and ``claim_next`` of :class:`~genqueue.backends.redis.store.RedisStore`."""

    def __init__(self, run: Run) -> None:
        self._run = run
        self._claim = GroupCall(self._send_claims)
        self._next = GroupCall(self._send_credits)
        # Limiters by resource as claim_next last saw them, with the time.monotonic() then.
        self._seen: dict[str, tuple[Seen, float]] = {}

    async def _send_claims(self, calls: list[Sequence[Any]]) -> list[Any]:
        replies: list[Any] = await self._run("claim", *(arg for call in calls for arg in call))
        return replies

    async def _send_credits(self, calls: list[Sequence[Any]]) -> list[Any]:
        clock = time.monotonic()
        known = dict(self._seen)
        gates = [
            arg
            for resource, (seen, at) in known.items()
            for arg in (resource, *seen.gate(seen.now + (clock - at)))
        ]
        credits = (arg for call in calls for arg in call)
        replies = await self._run("claim_next", len(known), *gates, *credits)
        # Each reply with the limiters its gates came from (for the epoch of a lease).
        sent = {resource: seen for resource, (seen, _) in known.items()}
        return [(reply, sent) for reply in replies]

    async def claim(self, task_id: str, worker_id: str, lease_s: float) -> Claim | Waiting | None:
        token = secrets.token_hex(8)
        gate, epoch = NO_GATE, None
        for _ in range(CAS_TRIES):
            reply = await self._claim(task_id, worker_id, token, lease_s, *gate)
            if not reply:
                return None
            if reply[0] == "waiting":
                return _waiting(reply)
            if reply[0] == "claimed":
                return _claimed(task_from(scripts.pairs(reply[1])), worker_id, token, epoch)
            seen = Seen.of(reply)  # its resource is limited: decide with its limiter
            gate, epoch = seen.gate(), seen.state.epoch
        raise exhausted(f"claim {task_id}")

    async def claim_next(
        self, queue: str, worker_id: str, lease_s: float
    ) -> Claim | Waiting | None:
        token = secrets.token_hex(8)
        for _ in range(CAS_TRIES):
            reply, known = await self._next(queue, worker_id, token, lease_s)
            if not reply:
                return None
            if reply[0] == "waiting":
                return _waiting(reply)
            if reply[0] == "claimed":
                task = task_from(scripts.pairs(reply[1]))
                gated = reply[2] == "1" and task.resource is not None
                epoch = known[task.resource].state.epoch if gated else None
                return _claimed(task, worker_id, token, epoch)
            self._learn(float(reply[1]), reply[2])  # 'limits': gates missing or outdated
        raise exhausted(f"claim_next {queue}")

    def _learn(self, now: float, rows: list[list[str]]) -> None:
        clock = time.monotonic()
        for resource, version, state in rows:
            old = self._seen.get(resource)
            if old is None or int(old[0].version) <= int(version):
                self._seen[resource] = (Seen(resource, version, load_state(state), now), clock)


def _waiting(reply: Sequence[Any]) -> Waiting:
    until = from_epoch(float(reply[1])) if reply[1] else None
    return Waiting(task_from(scripts.pairs(reply[2])), until)


def _claimed(task: Task, worker_id: str, token: str, epoch: int | None) -> Claim:
    assert task.lease_expires_at is not None
    lease = Lease(
        task.id,
        worker_id,
        token,
        task.attempts,
        task.lease_expires_at,
        task.cancel_requested,
        epoch,
    )
    return Claim(lease, task)
