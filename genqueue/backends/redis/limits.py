"""Shared limits on Redis: each resource's limiter state, its permits and its parked tasks.

The AIMD arithmetic is :mod:`genqueue.limiter`'s, run here in Python; the scripts never
re-implement it. A script that must decide with a limiter (claim, finish, wake) gets what
Python computed from the limiter at one version (the permits allowed, ``blocked_until``, the
new state after a throttle) and uses it only if that version is still current; otherwise it
writes nothing and answers with the limiter as it is now, and Python computes again. Every
time comes from Redis (``TIME`` in the scripts, and the ``now`` they return), so Python and
Lua agree on one clock. Key layout in ``genqueue.backends.redis``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from genqueue.contracts import Outcome, Throttled
from genqueue.errors import BackendUnavailableError
from genqueue.limiter import (
    LimiterState,
    dump_state,
    initial_state,
    load_state,
    permits,
    reconfigure,
    recover,
    status,
    throttle,
)
from genqueue.models import LimitStatus
from genqueue.settings import LimitSettings

# Versions change only when a limiter is written (a throttle, a new rule), so a retry almost
# never repeats; this only bounds a pathological storm of writes.
CAS_TRIES = 50
# What a script gets for a task whose limiter it has not seen: version, allowed, blocked_until.
NO_GATE: tuple[str, int, float] = ("", 0, 0.0)

Run = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class Seen:
    """A limiter as a script saw it: ``{'limited', resource, version, state, now}``."""

    resource: str
    version: str
    state: LimiterState
    now: float

    @classmethod
    def of(cls, reply: Sequence[Any]) -> Seen:
        _, resource, version, text, now = reply
        return cls(resource, version, load_state(text), float(now))

    def gate(self, now: float | None = None) -> tuple[str, int, float]:
        """What a claim needs to admit or park: version, permits allowed, blocked_until (the
        recovery due by ``now``, by default the time it was seen)."""
        return _gate(self.version, self.state, self.now if now is None else now)

    def after(self, outcome: Outcome, epoch: int | None) -> tuple[str, int, float, str]:
        """What a finish needs: the gate after ``outcome``, and the new state ('' if none)."""
        if not isinstance(outcome, Throttled):
            return (*self.gate(), "")
        cut = throttle(recover(self.state, self.now), epoch, self.now, outcome.retry_after_s)
        return (*_gate(self.version, cut, self.now), dump_state(cut))


def _gate(version: str, state: LimiterState, now: float) -> tuple[str, int, float]:
    return version, permits(recover(state, now)), state.blocked_until


def exhausted(what: str) -> BackendUnavailableError:
    """The error once ``CAS_TRIES`` reads of a limiter were all outdated by their write."""
    return BackendUnavailableError(f"Redis: a limiter kept changing under {what}")


@dataclass(frozen=True)
class Row:
    """One limiter as ``limits.lua`` reads it (``state`` None: never configured)."""

    resource: str
    version: str
    state: LimiterState | None
    in_flight: int
    waiting: int


class RedisLimits:
    """``configure_limits``, ``limits`` and ``wake_waiting`` of :class:`RedisStore`."""

    def __init__(self, run: Run) -> None:
        self._run = run

    async def _read(self, resources: Sequence[str] = ()) -> tuple[float, list[Row]]:
        now, rows = await self._run("limits", *resources)
        return float(now), [
            Row(r, v, load_state(s) if s else None, int(n), int(w)) for r, v, s, n, w in rows
        ]

    async def configure(self, policies: Mapping[str, LimitSettings]) -> None:
        for resource, policy in sorted(policies.items()):
            for _ in range(CAS_TRIES):
                now, [row] = await self._read([resource])
                if row.state is None:
                    state = initial_state(policy, now)
                else:
                    state = reconfigure(row.state, policy, now)
                    if state is row.state:  # the same rule: nothing to write
                        break
                if await self._run("set_limiter", resource, row.version, dump_state(state)):
                    break
            else:
                raise exhausted(f"configure {resource!r}")

    async def statuses(self) -> list[LimitStatus]:
        now, rows = await self._read()
        return sorted(
            (
                status(row.resource, row.state, row.in_flight, row.waiting, now)
                for row in rows
                if row.state is not None
            ),
            key=lambda s: s.resource,
        )

    async def wake(self) -> int:
        woken = 0
        pending: list[str] = []  # none: every limiter
        for _ in range(CAS_TRIES):
            now, rows = await self._read(pending)
            parked = [(row, row.state) for row in rows if row.waiting and row.state]
            if not parked:
                return woken
            args = [
                arg
                for row, state in parked
                for arg in (row.resource, *_gate(row.version, state, now))
            ]
            counts: list[int] = await self._run("wake", *args)
            woken += sum(n for n in counts if n >= 0)
            pending = [row.resource for (row, _), n in zip(parked, counts, strict=True) if n < 0]
            if not pending:
                return woken
        raise exhausted(f"wake {', '.join(pending)}")
