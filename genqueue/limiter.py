"""AIMD arithmetic of the concurrency limit shared per upstream resource: pure, no I/O, no clock.

One :class:`LimiterState` per resource (``video-cloud``) lives in the Store and is changed
atomically; every worker on every machine applies these functions to it, so they must agree
given the same state and ``now`` (float epoch seconds, always passed in, never read here).

The rule is seed 003's (the AIGC video service): start at 12, cut by 2 on a limit error, never
below 2, +1 after each quiet 60 s, never above 12. Its threshold belonged to one process; ours is
shared by many, which needs two guards the seed did not have:

- an **epoch**, incremented on every cut. A call remembers the epoch it started under, and only
  a call started under the current limit may cut it, so N workers that see the same burst of
  429s cut once, not N times down to the floor (TCP reacts once per window, RFC 3168 6.1.2).
- ``blocked_until``: a Retry-After kept as an absolute time in the shared state holds back every
  caller, not only the one that got it, so the next queued task does not hit the same 429.

Recognising a limit error is the handler's job (it raises ``RateLimited``; for Tencent Cloud,
``genqueue/handlers/video/cloud.py`` maps HTTP 429 and ``RATE_LIMIT_CODES``); this module only
reacts to one.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, replace
from datetime import UTC
from email.utils import parsedate_to_datetime

from genqueue.models import LimitChange, LimitStatus, from_epoch, maybe_from_epoch
from genqueue.settings import LimitSettings

# Products like 10 * 0.7 may land a hair below a whole number; do not lose a permit to that.
_EPSILON = 1e-9
HISTORY_KEPT = 50  # the last changes of a limit, for the API and the console


@dataclass(frozen=True)
class Change:
    """One move of the limit (``LimitChange`` once shown)."""

    at: float
    limit: float
    reason: str  # "start", "cut", "grow", "configure"


@dataclass(frozen=True)
class LimiterState:
    """One resource's limiter: the limit, why it is there, and the clocks that move it."""

    policy: LimitSettings  # the configured rule, floor (min) and ceiling (max) included
    limit: float  # calls allowed at once: floor(limit)
    epoch: int = 0  # +1 on every cut; a throttle cuts only if its call started in this epoch
    cut_at: float | None = None  # time of the last cut (for min_cut_gap_s)
    limit_before_cut: float | None = None  # the limit the upstream last refused at
    blocked_until: float = 0.0  # no call starts before this (Retry-After)
    quiet_since: float = 0.0  # last limit error or last growth: recovery counts from here
    cuts: int = 0
    throttles: int = 0  # limit errors reported, cutting or not
    history: tuple[Change, ...] = ()


def _moved(state: LimiterState, at: float, reason: str, **changes: object) -> LimiterState:
    """``state`` with ``changes``, its new limit recorded in the history."""
    moved = replace(state, **changes)  # type: ignore[arg-type]
    history = (*state.history, Change(at, moved.limit, reason))[-HISTORY_KEPT:]
    return replace(moved, history=history)


@dataclass(frozen=True)
class Admission:
    """Whether one more call may start now. When refused, ``wait_s`` > 0 is how long the
    resource stays blocked (Retry-After); 0 means every permit is taken: wait for a release."""

    admitted: bool
    wait_s: float = 0.0


def initial_state(policy: LimitSettings, now: float) -> LimiterState:
    """A resource never limited before: its start limit, the quiet clock starting now."""
    limit = policy.initial_limit
    return LimiterState(
        policy=policy, limit=limit, quiet_since=now, history=(Change(now, limit, "start"),)
    )


def reconfigure(state: LimiterState, policy: LimitSettings, now: float) -> LimiterState:
    """Apply a changed rule: the limit is clamped into the new bounds and the quiet clock
    restarts, so a higher max is climbed step by step rather than all at once."""
    if policy == state.policy:
        return state
    state = recover(state, now)  # growth due under the old rule is kept
    limit = min(max(state.limit, policy.min), policy.max)
    return _moved(state, now, "configure", policy=policy, limit=limit, quiet_since=now)


def permits(state: LimiterState) -> int:
    """Calls allowed at once under the current limit."""
    return math.floor(state.limit + _EPSILON)


def _step_s(state: LimiterState, limit: float) -> float:
    """Quiet seconds before ``limit`` grows by one step: the recovery interval, times
    ``reprobe_factor`` for the step that reaches the level the upstream last refused."""
    policy = state.policy
    refused = state.limit_before_cut
    if refused is not None and limit < refused <= limit + policy.increase + _EPSILON:
        return policy.recovery_interval_s * policy.reprobe_factor
    return policy.recovery_interval_s


def recover(state: LimiterState, now: float) -> LimiterState:
    """Grow the limit by ``increase`` for every quiet interval since the last limit error or
    growth, up to max (the seed's rule), the step back to the level last refused taking
    ``reprobe_factor`` intervals. Callers apply it lazily on any acquire or report; the clock
    keeps its phase, so one late call equals a timer that never missed.

    No faster regrowth below ``limit_before_cut`` (TCP CUBIC, palantir/dialogue#3052): those
    fix growth counted per round trip, which for minute-long video jobs is slow; ours is counted
    in time, and ``recovery_interval_s`` is the knob for how fast. CUBIC's plateau at the old
    window is kept, as the slower reprobe."""
    policy = state.policy
    grown, clock = state, state.quiet_since
    while grown.limit < policy.max and clock + (step := _step_s(state, grown.limit)) <= now:
        clock += step  # one history entry per step, as a timer would log
        grown = _moved(grown, clock, "grow", limit=min(policy.max, grown.limit + policy.increase))
    if grown is state:
        return state
    return replace(grown, quiet_since=clock)


def admits(state: LimiterState, in_flight: int, now: float) -> Admission:
    """Whether a call may start with ``in_flight`` already running (recovery due by ``now``
    counted, so callers that have not stored it yet still agree)."""
    if now < state.blocked_until:
        return Admission(admitted=False, wait_s=state.blocked_until - now)
    return Admission(admitted=in_flight < permits(recover(state, now)))


def throttle(
    state: LimiterState, epoch_at_start: int | None, now: float, retry_after_s: float | None = None
) -> LimiterState:
    """A call started under ``epoch_at_start`` got a limit error at ``now`` (None: the call
    took no permit of this limiter, so it cannot cut it).

    Always: counted, the quiet clock restarts, and ``blocked_until`` extends to cover
    ``retry_after_s``. The limit is cut (by ``decrease`` or times ``factor``, never below
    min) only if the call started under the current limit and ``min_cut_gap_s`` has passed
    since the last cut; a cut that would not lower the limit (at the floor) is none. A call
    started under the current limit but refused within that gap holds every caller back
    until the gap ends, when the next refusal may cut."""
    state = recover(state, now)
    policy = state.policy
    blocked_until = state.blocked_until
    if retry_after_s is not None:
        blocked_until = max(blocked_until, now + max(0.0, retry_after_s))
    state = replace(
        state, blocked_until=blocked_until, quiet_since=now, throttles=state.throttles + 1
    )
    if epoch_at_start != state.epoch:
        return state
    if state.cut_at is not None and now - state.cut_at < policy.min_cut_gap_s:
        # Refused under the current limit, too soon to cut again: the limit is still above
        # the upstream's. Hold every call back until a cut may follow, rather than let each
        # permit a refusal frees be refused again at once (a storm of limit errors, all in
        # the gap, that cuts nothing).
        hold = max(state.blocked_until, state.cut_at + policy.min_cut_gap_s)
        return replace(state, blocked_until=hold)
    if policy.decrease_mode == "factor":
        cut = state.limit * policy.factor
    else:
        cut = state.limit - policy.decrease
    limit = max(policy.min, cut)
    if limit >= state.limit:
        return state
    return _moved(
        state,
        now,
        "cut",
        limit=limit,
        limit_before_cut=state.limit,
        epoch=state.epoch + 1,
        cut_at=now,
        cuts=state.cuts + 1,
    )


def free_permits(state: LimiterState, in_flight: int, now: float) -> int:
    """How many more calls may start now: 0 while blocked (how many parked tasks to wake)."""
    if now < state.blocked_until:
        return 0
    return max(0, permits(recover(state, now)) - in_flight)


def dump_state(state: LimiterState) -> str:
    """The state as the stores keep it: one JSON text, read back by :func:`load_state`."""
    fields = asdict(state)
    fields["policy"] = state.policy.model_dump(mode="json")
    return json.dumps(fields, separators=(",", ":"))


def load_state(text: str | bytes) -> LimiterState:
    fields = json.loads(text)
    fields["policy"] = LimitSettings.model_validate(fields["policy"])
    fields["history"] = tuple(Change(**c) for c in fields["history"])
    return LimiterState(**fields)


def status(
    resource: str, state: LimiterState, in_flight: int, waiting: int, now: float
) -> LimitStatus:
    """What the API shows of a limiter at ``now`` (recovery due by then counted)."""
    state = recover(state, now)
    return LimitStatus(
        resource=resource,
        limit=state.limit,
        permits=permits(state),
        min=state.policy.min,
        max=state.policy.max,
        in_flight=in_flight,
        waiting=waiting,
        blocked_until=from_epoch(state.blocked_until) if state.blocked_until > now else None,
        cuts=state.cuts,
        throttles=state.throttles,
        last_cut_at=maybe_from_epoch(state.cut_at),
        history=[
            LimitChange(at=from_epoch(c.at), limit=c.limit, reason=c.reason) for c in state.history
        ],
    )


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header at ``now``: delay-seconds or an HTTP-date
    (RFC 9110 10.2.3, any of its three date formats, always UTC); None if absent or unreadable,
    so the caller falls back to its own backoff. A date in the past means no wait."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # asctime and "-0000" dates carry no zone; HTTP-dates are GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)
