"""The capacity policy with plain datetimes: merge, lowest wins, expiry, stale and resume."""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ems.domain.capacity import OPEN_END, CapacityBlock, CapacityChangeReason, CapacityUnit, LimitSource, SignalKind
from ems.domain.units import Phase
from ems.errors import InvalidInput
from ems.grid.capacity import CapacityPolicy
from tests.examples import examples
from tests.unit.grid.helpers import at, block, signal, site


def policy(**overrides: object) -> CapacityPolicy:
    return CapacityPolicy([site(**overrides)])


def test_static_limit_applies_without_signals() -> None:
    p = policy()
    now = p.in_force("depot", None, at(0))
    assert now.capacity_w == 100_000
    assert now.capacity_source is LimitSource.STATIC
    assert now.phase_limits_a == {Phase.L1: 160, Phase.L2: 160, Phase.L3: 160}
    assert p.in_force("depot", "feeder-a", at(0)).capacity_w == 50_000
    assert p.tick(at(0)) == []


def test_forecast_below_static_wins_only_inside_its_block() -> None:
    p = policy()
    events = p.apply(signal(block(10, 70, 40_000)))
    assert [e.reason for e in events] == [CapacityChangeReason.NEW_FORECAST]
    assert events[0].capacity_w == 100_000  # not in force yet: the timeline changed
    timeline = p.timeline("depot", None, at(0), at(120))
    assert [(i.start, i.end, i.capacity_w, i.capacity_source) for i in timeline] == [
        (at(0), at(10), 100_000, LimitSource.STATIC),
        (at(10), at(70), 40_000, LimitSource.FORECAST),
        (at(70), at(120), 100_000, LimitSource.STATIC),
    ]


def test_forecast_above_static_does_not_raise_the_limit() -> None:
    p = policy()
    p.apply(signal(block(0, 60, 250, CapacityUnit.KW)))
    assert p.in_force("depot", None, at(5)).capacity_w == 100_000


def test_lowest_of_forecast_and_limit_wins_and_names_its_source() -> None:
    p = policy()
    p.apply(signal(block(0, 60, 60_000)))
    p.apply(signal(block(0, 30, 45, CapacityUnit.KW), kind=SignalKind.LIMIT, received_min=1))
    first = p.in_force("depot", None, at(2))
    assert (first.capacity_w, first.capacity_source) == (45_000, LimitSource.LIMIT)
    later = p.in_force("depot", None, at(40))
    assert (later.capacity_w, later.capacity_source) == (60_000, LimitSource.FORECAST)


def test_current_blocks_per_phase_and_all_phases() -> None:
    p = policy()
    p.apply(signal(block(0, 60, 100, CapacityUnit.A), block(0, 60, 80, CapacityUnit.A, Phase.L2)))
    limits = p.in_force("depot", None, at(1))
    assert limits.phase_limits_a == {Phase.L1: 100, Phase.L2: 80, Phase.L3: 100}
    assert limits.phase_sources[Phase.L1] is LimitSource.FORECAST
    assert limits.capacity_w == 100_000  # the power bound is kept apart


def test_new_forecast_replaces_the_previous_one() -> None:
    p = policy()
    p.apply(signal(block(0, 60, 30_000), message_id="a"))
    p.apply(signal(block(30, 90, 70_000), received_min=1, message_id="b"))
    assert p.in_force("depot", None, at(10)).capacity_w == 100_000
    assert p.in_force("depot", None, at(40)).capacity_w == 70_000


def test_empty_forecast_clears() -> None:
    p = policy()
    p.apply(signal(block(0, 60, 30_000)))
    p.apply(signal(received_min=1))
    assert p.in_force("depot", None, at(2)).capacity_w == 100_000


def test_open_ended_limit_holds_until_replaced() -> None:
    p = policy()
    p.apply(signal(CapacityBlock(at(0), OPEN_END, 10_000), kind=SignalKind.LIMIT))
    assert p.in_force("depot", None, at(10_000)).capacity_w == 10_000
    assert p.in_force("depot", None, at(0)).end == OPEN_END
    p.apply(signal(kind=SignalKind.LIMIT, received_min=1))
    assert p.in_force("depot", None, at(2)).capacity_w == 100_000


def test_circuit_signal_leaves_the_site_alone() -> None:
    p = policy()
    events = p.apply(signal(block(0, 60, 20_000), circuit_id="feeder-a"))
    assert [(e.circuit_id, e.capacity_w) for e in events] == [("feeder-a", 20_000)]
    assert p.in_force("depot", None, at(1)).capacity_w == 100_000


def test_unknown_target_is_refused() -> None:
    p = policy()
    with pytest.raises(InvalidInput):
        p.apply(signal(block(0, 60, 1), circuit_id="nope"))
    with pytest.raises(InvalidInput):
        p.apply(signal(block(0, 60, 1), site_id="elsewhere"))


def test_block_start_and_expiry_are_events() -> None:
    p = policy()
    p.apply(signal(block(10, 20, 40_000)))
    assert p.next_change_at(at(0)) == at(10)
    started = p.tick(at(10))
    assert [(e.reason, e.capacity_w, e.previous_capacity_w) for e in started] == [
        (CapacityChangeReason.BLOCK_STARTED, 40_000, 100_000)
    ]
    assert p.tick(at(15)) == []
    expired = p.tick(at(20))
    assert [(e.reason, e.capacity_w) for e in expired] == [(CapacityChangeReason.BLOCK_EXPIRED, 100_000)]
    assert p.latest("depot", None, SignalKind.FORECAST) is None  # expired blocks are dropped


def test_back_to_back_blocks_with_equal_value_are_one_interval_and_no_event() -> None:
    p = policy()
    p.apply(signal(block(0, 10, 40_000), block(10, 20, 40_000)))
    assert len(p.timeline("depot", None, at(0), at(20))) == 1
    assert p.tick(at(10)) == []


def test_silence_goes_stale_to_failsafe_and_a_signal_resumes() -> None:
    p = policy(stale_after_s=600.0)
    p.apply(signal(block(0, 600, 80_000)))
    assert p.next_change_at(at(1)) == at(10)  # stale_after_s = 600
    assert p.tick(at(9)) == []
    stale = p.tick(at(10))
    assert [(e.circuit_id, e.reason, e.capacity_w, e.source, e.stale) for e in stale] == [
        (None, CapacityChangeReason.STALE, 20_000, LimitSource.FAILSAFE, True),
        ("feeder-a", CapacityChangeReason.STALE, 50_000, LimitSource.STATIC, True),
    ]
    timeline = p.timeline("depot", None, at(10), at(300))
    assert {i.capacity_w for i in timeline} == {20_000}  # held until a signal arrives
    resumed = p.apply(signal(block(0, 600, 80_000), received_min=12, circuit_id="feeder-a"))
    assert [(e.circuit_id, e.reason, e.capacity_w) for e in resumed] == [
        (None, CapacityChangeReason.RESUMED, 80_000),
        ("feeder-a", CapacityChangeReason.RESUMED, 50_000),
        ("feeder-a", CapacityChangeReason.NEW_FORECAST, 50_000),
    ]
    assert not p.is_stale("depot", at(12))


def test_failsafe_never_raises_a_lower_limit() -> None:
    p = policy(failsafe_capacity_w=90_000.0, stale_after_s=600.0)
    p.apply(signal(block(0, 600, 30_000)))
    p.tick(at(11))
    now = p.in_force("depot", None, at(11))
    assert (now.capacity_w, now.capacity_source, now.stale) == (30_000, LimitSource.FORECAST, True)


def test_no_signal_ever_is_never_stale_unless_watched() -> None:
    assert not policy(stale_after_s=600.0).is_stale("depot", at(10_000))
    watched = CapacityPolicy([site(stale_after_s=600.0)], watch_from=at(0))
    assert watched.is_stale("depot", at(10))
    events = watched.tick(at(10))
    assert events[0].reason is CapacityChangeReason.STALE


def test_replayed_signal_does_not_count_as_fresh() -> None:
    p = CapacityPolicy([site(stale_after_s=600.0)], watch_from=at(0))
    p.apply(signal(block(0, 60, 50_000), received_min=5), fresh=False)
    assert p.is_stale("depot", at(10))


def test_duplicate_message_id() -> None:
    p = policy()
    first = signal(block(0, 60, 50_000), message_id="m1")
    assert not p.is_duplicate(first)
    p.apply(first)
    assert p.is_duplicate(signal(block(0, 60, 50_000), message_id="m1", received_min=1))
    assert not p.is_duplicate(signal(block(0, 60, 50_000), message_id="m1", kind=SignalKind.LIMIT))


def test_clock_stepping_back_does_not_revive_expired_blocks() -> None:
    p = policy()
    p.apply(signal(block(0, 10, 40_000)))
    p.tick(at(11))
    assert p.tick(at(5)) == []
    assert p.latest("depot", None, SignalKind.FORECAST) is None


# ---------------------------------------------------------------- properties

_blocks = st.lists(
    st.tuples(st.integers(0, 120), st.integers(1, 60), st.floats(0, 200_000, allow_nan=False)),
    max_size=8,
)


@settings(max_examples=examples(200), deadline=None)
@given(forecast=_blocks, limit=_blocks, probe=st.integers(0, 200))
def test_in_force_is_the_minimum_of_every_covering_source(
    forecast: list[tuple[int, int, float]], limit: list[tuple[int, int, float]], probe: int
) -> None:
    p = policy()
    p.apply(signal(*(block(s, s + d, c) for s, d, c in forecast)))
    p.apply(signal(*(block(s, s + d, c) for s, d, c in limit), kind=SignalKind.LIMIT))
    covering = [c for s, d, c in forecast + limit if s <= probe < s + d]
    assert p.in_force("depot", None, at(probe)).capacity_w == min([100_000.0, *covering])


@settings(max_examples=examples(200), deadline=None)
@given(forecast=_blocks, start=st.integers(0, 100), span=st.integers(1, 300))
def test_timeline_tiles_the_span_and_agrees_with_in_force(
    forecast: list[tuple[int, int, float]], start: int, span: int
) -> None:
    p = policy()
    p.apply(signal(*(block(s, s + d, c) for s, d, c in forecast)))
    timeline = p.timeline("depot", None, at(start), at(start + span))
    assert timeline[0].start == at(start)
    assert timeline[-1].end == at(start + span)
    for left, right in pairwise(timeline):
        assert left.end == right.start
        assert not left.same_limits(right)
    for interval in timeline:
        middle = interval.start + (interval.end - interval.start) / 2
        assert p.in_force("depot", None, middle).capacity_w == interval.capacity_w
        assert interval.end - interval.start > timedelta(0)


@settings(max_examples=examples(200), deadline=None)
@given(
    forecast=_blocks,
    limit=_blocks,
    steps=st.lists(st.integers(1, 40), min_size=1, max_size=12),
    silence_s=st.sampled_from([600.0, 86_400.0]),
)
def test_ticks_report_every_change_of_what_is_in_force(
    forecast: list[tuple[int, int, float]],
    limit: list[tuple[int, int, float]],
    steps: list[int],
    silence_s: float,
) -> None:
    """Whatever the tick times, the last event (or the first look) always equals what is in force."""
    p = policy(stale_after_s=silence_s)
    p.tick(at(0))
    known = p.in_force("depot", None, at(0)).capacity_w
    for event in p.apply(signal(*(block(s, s + d, c) for s, d, c in forecast))):
        known = event.capacity_w if event.circuit_id is None else known
    for event in p.apply(signal(*(block(s, s + d, c) for s, d, c in limit), kind=SignalKind.LIMIT)):
        known = event.capacity_w if event.circuit_id is None else known
    minute = 0
    for step in steps:
        minute += step
        for event in p.tick(at(minute)):
            if event.circuit_id is None:
                known = event.capacity_w
        assert known == p.in_force("depot", None, at(minute)).capacity_w, minute
