"""The arithmetic of genqueue/api/quotas.py: whose limits apply, and Retry-After from the drain
rate."""

from __future__ import annotations

import httpx
import pytest

from genqueue.api.auth import ANONYMOUS, Principal
from genqueue.api.estimates import Snapshot
from genqueue.api.quotas import (
    RETRY_MAX_S,
    UNMEASURED_S,
    KeyQuota,
    clamp_s,
    drain_per_s,
    drain_wait_s,
    key_quota,
)
from genqueue.calls import raise_for
from genqueue.errors import QuotaExceededError
from genqueue.eta import Capacity
from genqueue.models import Role
from genqueue.settings import QuotaSettings

DEFAULTS = QuotaSettings(tasks_per_minute=60, in_flight=10)


def key(role: Role, per_minute: int | None = None, in_flight: int | None = None) -> Principal:
    return Principal("ann", role, "k123456789", per_minute, in_flight)


def test_a_user_key_without_figures_takes_the_defaults() -> None:
    assert key_quota(key(Role.USER), DEFAULTS) == KeyQuota(60, 10)


def test_a_keys_own_figures_win_and_zero_is_unlimited() -> None:
    assert key_quota(key(Role.USER, 600, 0), DEFAULTS) == KeyQuota(600, None)


def test_operators_and_admins_are_limited_only_by_their_own_figures() -> None:
    assert key_quota(key(Role.OPERATOR), DEFAULTS) == KeyQuota()
    assert key_quota(key(Role.ADMIN, in_flight=5), DEFAULTS) == KeyQuota(None, 5)


def test_without_a_key_no_key_quota_applies() -> None:
    assert key_quota(ANONYMOUS, DEFAULTS) == KeyQuota()


def test_defaults_of_zero_or_none_are_unlimited() -> None:
    assert key_quota(key(Role.USER), QuotaSettings(tasks_per_minute=0)) == KeyQuota()


def test_retry_after_is_the_excess_over_the_drain_rate_in_whole_seconds() -> None:
    assert drain_wait_s(10, 4.0) == 3  # 2.5 s rounded up
    assert drain_wait_s(1, 100.0) == 1  # never below a second
    assert drain_wait_s(10_000, 1.0) == RETRY_MAX_S
    assert drain_wait_s(5, None) == UNMEASURED_S
    assert clamp_s(0.2) == 1 and clamp_s(59.1) == 60


def test_the_drain_rate_is_slots_over_the_mean_run_of_each_measured_queue() -> None:
    snap = Snapshot(
        taken=0.0,
        capacity={
            "a": Capacity(slots=4, running=4, mean_s=2.0),  # 2 per second
            "b": Capacity(slots=2, running=0, mean_s=0.5),  # 4 per second
            "idle": Capacity(slots=0, running=0, mean_s=1.0),  # no live worker
            "new": Capacity(slots=3, running=0, mean_s=None),  # never measured
        },
        times=[],
        permits={},
    )
    assert drain_per_s(snap, ["a"]) == 2.0
    assert drain_per_s(snap, ["a", "b", "a"]) == 6.0
    assert drain_per_s(snap, ["idle", "new", "unknown"]) is None


def test_the_clients_turn_a_429_into_quota_exceeded_with_its_retry_after() -> None:
    body = {
        "error": "quota_exceeded",
        "message": "queue 'video' holds 2 queued tasks and takes at most 2; this submit adds 1",
        "fields": [],
        "limit": "queue",
        "retry_after_s": 7,
        "allowed": 2,
        "current": 2,
        "requested": 1,
        "queue": "video",
    }
    response = httpx.Response(429, json=body, headers={"Retry-After": "7"})
    with pytest.raises(QuotaExceededError, match="takes at most 2") as caught:
        raise_for(response)
    error = caught.value
    assert (error.limit, error.retry_after_s, error.queue) == ("queue", 7, "video")
    assert (error.allowed, error.current, error.requested) == (2, 2, 1)
