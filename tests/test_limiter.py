"""The AIMD arithmetic of the shared limiter: cut, recovery, admission, Retry-After."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from genqueue.limiter import (
    Admission,
    LimiterState,
    admits,
    initial_state,
    parse_retry_after,
    permits,
    reconfigure,
    recover,
    throttle,
)
from genqueue.settings import LimitSettings

T0 = 1_800_000_000.0  # any epoch second; nothing here reads the clock
# The seed's rule exactly: every step up at the same pace.
SEED = LimitSettings(reprobe_factor=1.0)


def cut_once(state: LimiterState, now: float) -> LimiterState:
    """A limit error from a call started under the current limit."""
    return throttle(state, state.epoch, now)


def test_seed_scenario_cuts_by_two_to_the_floor_then_regrows_one_per_quiet_minute() -> None:
    state = initial_state(SEED, T0)
    assert (state.limit, permits(state)) == (12, 12)
    limits = []
    for i in range(6):  # errors 10 s apart: no recovery in between, well past min_cut_gap_s
        state = cut_once(state, T0 + 10 * i)
        limits.append(state.limit)
    assert limits == [10, 8, 6, 4, 2, 2]
    assert (state.cuts, state.throttles, state.epoch) == (5, 6, 5)
    last_error = T0 + 50
    assert recover(state, last_error + 59.9).limit == 2
    assert recover(state, last_error + 60).limit == 3
    climbed = [recover(state, last_error + 60 * m).limit for m in range(1, 12)]
    assert climbed == [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 12]


def test_the_step_back_to_the_level_last_refused_waits_reprobe_factor_intervals() -> None:
    rule = LimitSettings(start=9, recovery_interval_s=4)  # reprobe_factor 2 by default
    state = cut_once(initial_state(rule, T0), T0)  # refused at 9: 7
    assert (state.limit, state.limit_before_cut) == (7, 9)
    assert recover(state, T0 + 4).limit == 8
    assert recover(state, T0 + 11.9).limit == 8  # 9 failed once: probed after 8 s, not 4
    assert recover(state, T0 + 12).limit == 9
    assert recover(state, T0 + 16).limit == 10  # past it, the usual pace again
    assert [c.at - T0 for c in recover(state, T0 + 16).history[-3:]] == [4, 12, 16]


def test_a_burst_of_throttles_from_one_epoch_cuts_once() -> None:
    state = initial_state(SEED, T0)
    epoch = state.epoch
    for i in range(20):  # 20 workers whose calls all started under limit 12
        state = throttle(state, epoch, T0 + 5 + i * 0.5)
    assert (state.limit, state.cuts, state.throttles) == (10, 1, 20)
    assert state.limit_before_cut == 12


def test_a_throttle_from_a_call_started_before_the_last_cut_does_not_cut() -> None:
    state = cut_once(initial_state(SEED, T0), T0)
    late = throttle(state, epoch_at_start=state.epoch - 1, now=T0 + 30)
    assert (late.limit, late.epoch, late.cuts, late.throttles) == (10, 1, 1, 2)


def test_cuts_are_at_least_min_cut_gap_apart() -> None:
    policy = LimitSettings(min_cut_gap_s=5)
    state = cut_once(initial_state(policy, T0), T0)
    too_soon = cut_once(state, T0 + 4.9)
    assert (too_soon.limit, too_soon.cuts) == (10, 1)
    assert cut_once(too_soon, T0 + 5).limit == 8


def test_a_refusal_under_the_new_limit_too_soon_to_cut_holds_calls_back_until_one_may() -> None:
    state = cut_once(initial_state(LimitSettings(min_cut_gap_s=5), T0), T0)
    refused = throttle(state, epoch_at_start=state.epoch, now=T0 + 1)
    assert (refused.limit, refused.cuts, refused.blocked_until) == (10, 1, T0 + 5)
    held = admits(refused, 0, T0 + 4.9)
    assert not held.admitted and held.wait_s == pytest.approx(0.1)
    assert admits(refused, 0, T0 + 5).admitted
    # A call that started before the cut says nothing about the new limit: no hold.
    stale = throttle(state, epoch_at_start=state.epoch - 1, now=T0 + 1)
    assert stale.blocked_until == state.blocked_until


def test_factor_mode_multiplies_and_stops_at_the_floor() -> None:
    state = initial_state(LimitSettings(decrease_mode="factor", factor=0.5, min=2), T0)
    seen = []
    for i in range(4):
        state = cut_once(state, T0 + 2 * i)
        seen.append((state.limit, permits(state)))
    assert seen == [(6, 6), (3, 3), (2, 2), (2, 2)]
    assert state.cuts == 3


def test_factor_mode_permits_are_the_whole_part_of_the_limit() -> None:
    state = cut_once(initial_state(LimitSettings(decrease_mode="factor"), T0), T0)
    assert state.limit == pytest.approx(8.4)
    assert permits(state) == 8
    # 100 * 0.29 is 28.999999999999996 in floating point; the limit still allows 29 calls.
    rule = LimitSettings(max=100, decrease_mode="factor", factor=0.29)
    assert permits(cut_once(initial_state(rule, T0), T0)) == 29


def test_retry_after_blocks_every_caller_until_it_passes() -> None:
    state = throttle(initial_state(SEED, T0), 0, T0, retry_after_s=30)
    assert state.blocked_until == T0 + 30
    assert admits(state, in_flight=0, now=T0 + 10) == Admission(admitted=False, wait_s=20)
    assert admits(state, in_flight=0, now=T0 + 30) == Admission(admitted=True)


def test_retry_after_extends_the_block_but_never_shortens_it() -> None:
    state = throttle(initial_state(SEED, T0), 0, T0, retry_after_s=30)
    state = throttle(state, 0, T0 + 1, retry_after_s=5)  # old epoch: no cut, still blocks
    assert state.blocked_until == T0 + 30
    state = throttle(state, 0, T0 + 2, retry_after_s=60)
    assert state.blocked_until == T0 + 62


def test_admission_stops_at_the_limit_and_counts_due_recovery() -> None:
    state = cut_once(initial_state(SEED, T0), T0)  # 10
    assert admits(state, in_flight=9, now=T0 + 1).admitted
    assert admits(state, in_flight=10, now=T0 + 1) == Admission(admitted=False, wait_s=0)
    assert admits(state, in_flight=10, now=T0 + 60).admitted  # 11 by now, not yet stored


def test_recovery_applies_every_interval_passed_at_once_and_never_past_max() -> None:
    state = initial_state(SEED, T0)
    for i in range(5):
        state = cut_once(state, T0 + 10 * i)  # 2, last error at T0 + 40
    grown = recover(state, T0 + 40 + 185)
    assert grown.limit == 5
    assert grown.quiet_since == T0 + 40 + 180  # the clock keeps its phase
    assert recover(state, T0 + 40 + 100_000).limit == 12
    stepwise = state
    for t in (30, 61, 130, 185):
        stepwise = recover(stepwise, T0 + 40 + t)
    assert stepwise == grown


def test_any_limit_error_restarts_the_quiet_clock() -> None:
    state = cut_once(initial_state(SEED, T0), T0)
    state = throttle(state, state.epoch - 1, T0 + 50)  # no cut, but not quiet either
    assert recover(state, T0 + 100).limit == 10
    assert recover(state, T0 + 110).limit == 11


def test_a_cut_starts_from_the_recovered_limit() -> None:
    state = cut_once(initial_state(SEED, T0), T0)  # 10
    state = cut_once(state, T0 + 120)  # 12 by then, so 10 again
    assert (state.limit, state.limit_before_cut) == (10, 12)


def test_at_max_recovery_changes_nothing() -> None:
    state = initial_state(SEED, T0)
    assert recover(state, T0 + 3600) is state


def test_reconfigure_clamps_the_limit_and_restarts_the_quiet_clock() -> None:
    state = cut_once(initial_state(SEED, T0), T0)  # 10
    lower = reconfigure(state, LimitSettings(max=8), T0 + 300)
    assert (lower.limit, lower.quiet_since, lower.epoch) == (8, T0 + 300, state.epoch)
    assert reconfigure(lower, LimitSettings(max=8), T0 + 999) is lower


def test_state_is_immutable_and_functions_return_new_states() -> None:
    state = initial_state(SEED, T0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.limit = 3  # type: ignore[misc]
    after = throttle(state, 0, T0, retry_after_s=10)
    assert state == initial_state(SEED, T0)
    assert after is not state


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("1.5", 1.5),
        ("-3", 0.0),
        ("Sun, 06 Nov 1994 08:49:37 GMT", 30.0),  # IMF-fixdate
        ("Sunday, 06-Nov-94 08:49:37 GMT", 30.0),  # obsolete RFC 850
        ("Sun Nov  6 08:49:37 1994", 30.0),  # asctime, no zone: UTC
        (None, None),
        ("", None),
        ("soon", None),
        ("inf", None),
    ],
)
def test_retry_after_reads_seconds_and_http_dates(
    header: str | None, seconds: float | None
) -> None:
    now = datetime(1994, 11, 6, 8, 49, 7, tzinfo=UTC).timestamp()
    assert parse_retry_after(header, now) == seconds


def test_retry_after_in_the_past_means_no_wait() -> None:
    past = format_datetime(datetime(2020, 1, 1, tzinfo=UTC), usegmt=True)
    assert parse_retry_after(past, T0) == 0.0
