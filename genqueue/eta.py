"""Estimated start and finish times: pure arithmetic over what the store and registry measure.

A queued task at position p (1 = next) in a queue served by ``slots`` worker slots, ``running``
of them busy with the queue's tasks, starts once ``running + p - slots`` of the runs before it
have ended (none if a slot is free for it). Runs end at ``slots / mean`` per second, ``mean``
being the queue's moving average run length (``Store.service_times``): the wait is that many
runs times ``mean / slots``. A task that needs a permit of a limited resource is served by at
most the limit's permits. This is Gradio's queue estimate with a moving average per kind
instead of one mean over all (gradio-app/gradio#572, #1984), see research/scheduling.md 0.3.

The error shrinks with the position (roughly CV / sqrt(p + 1) for independent run lengths):
the next few tasks are the least predictable, which the API shows as a plain estimate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from genqueue.models import ServiceTime


@dataclass(frozen=True)
class Capacity:
    """What serves one queue now."""

    slots: int  # worker slots of live workers consuming the queue
    running: int  # of them, busy with this queue's tasks
    mean_s: float | None  # the queue's mean run length; None before any run finished


def queue_mean(times: Sequence[ServiceTime], queue: str) -> float | None:
    """Mean run length of a queue's kinds, each weighted by how many of its runs were seen."""
    mine = [t for t in times if t.queue == queue]
    samples = sum(t.samples for t in mine)
    if samples == 0:
        return None
    return sum(t.mean_s * t.samples for t in mine) / samples


def kind_mean(times: Sequence[ServiceTime], queue: str, kind: str) -> float | None:
    return next((t.mean_s for t in times if (t.queue, t.kind) == (queue, kind)), None)


def start_in_s(position: int, capacity: Capacity, permits: int | None = None) -> float | None:
    """Seconds until a queued task at ``position`` starts; None when nothing serves its queue,
    or when it must wait for runs to end and no run of its queue was ever measured (one with
    a free slot starts now, measured or not). ``permits``: the limit of the resource it
    needs."""
    slots = capacity.slots if permits is None else min(capacity.slots, permits)
    if slots <= 0:
        return None
    running = min(capacity.running, slots)
    runs_before = running + position - slots
    if runs_before <= 0:
        return 0.0
    if capacity.mean_s is None:
        return None
    return runs_before * capacity.mean_s / slots


def remaining_s(elapsed_s: float, fraction: float, mean_s: float | None) -> float | None:
    """Seconds a running task still needs: extrapolated from its progress once it reported
    some (AUTOMATIC1111's ``elapsed / progress - elapsed``), else its kind's mean."""
    if 0.05 <= fraction < 1.0 and elapsed_s > 0:
        return elapsed_s / fraction - elapsed_s
    if mean_s is None:
        return None
    return max(0.0, mean_s - elapsed_s)


def rounded(seconds: float) -> str:
    """How long until, as a person wants to read it: "in about 40 s", "in about 3 min"."""
    if seconds <= 0:
        return "now"
    if seconds < 1:
        return "in under a second"
    if seconds < 90:
        return f"in about {math.ceil(seconds)} s"
    if seconds < 5400:
        return f"in about {round(seconds / 60)} min"
    return f"in about {seconds / 3600:.1f} h"
