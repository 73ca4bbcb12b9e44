"""Departure and energy estimates from past sessions (``ems.optimizer.estimates``)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ems.optimizer.estimates import (
    EMPTY,
    EstimateSettings,
    History,
    PastSession,
    Source,
    local_weekday,
    past_session,
    quantile,
)

H = 3600.0


def sessions(token: str | None, weekday: int, stays_h: list[float], energy_kwh: list[float]) -> list[PastSession]:
    return [PastSession(token, weekday, h * H, e * 1000) for h, e in zip(stays_h, energy_kwh, strict=True)]


def test_quantile_interpolates_like_numpy() -> None:
    assert quantile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.5
    assert quantile([1.0, 2.0, 3.0, 4.0, 5.0], 0.25) == 2.0
    assert quantile([7.0], 0.25) == 7.0
    with pytest.raises(ValueError):
        quantile([], 0.5)


def test_card_and_weekday_first_then_card_then_site_then_defaults() -> None:
    monday = sessions("A", 0, [6, 7, 8, 9], [10, 12, 14, 40])
    other_days = sessions("A", 2, [2, 2, 2], [5, 5, 5])  # 3 on Wednesday: too few alone
    strangers = sessions("B", 1, [10, 10, 10, 10], [30, 30, 30, 30])
    h = History(monday + other_days + strangers)

    on_monday = h.estimate("A", 0)
    assert on_monday.source is Source.TOKEN_WEEKDAY and on_monday.sessions == 4
    assert on_monday.stay_s == pytest.approx(6.75 * H)  # 25th percentile of 6, 7, 8, 9 h
    assert on_monday.energy_wh == pytest.approx(13_000)  # median: the 40 kWh outlier does not count

    on_wednesday = h.estimate("A", 2)  # card A has 7 sessions over all days
    assert on_wednesday.source is Source.TOKEN and on_wednesday.sessions == 7
    assert on_wednesday.stay_s == pytest.approx(quantile([6, 7, 8, 9, 2, 2, 2], 0.25) * H)

    unknown = h.estimate("C", 0)
    assert unknown.source is Source.SITE and unknown.sessions == 11
    assert h.estimate(None, 0) == unknown

    nothing = EMPTY.estimate("A", 0)
    assert nothing.source is Source.DEFAULT
    assert (nothing.stay_s, nothing.energy_wh) == (8 * H, 80_000)


def test_sessions_that_are_not_habits_are_left_out() -> None:
    noise = [
        PastSession("A", 0, 60.0, 20_000),  # a 1-minute plug-in
        PastSession("A", 0, 10 * 86_400.0, 20_000),  # forgotten for 10 days
        PastSession("A", 0, 8 * H, 0.0),  # nothing charged
        PastSession("A", 9, 8 * H, 20_000),  # no such weekday
    ]
    h = History(noise + sessions("A", 0, [5, 5, 5], [9, 9, 9]), EstimateSettings(min_sessions=4))
    assert h.sessions == 3
    assert h.estimate("A", 0).source is Source.DEFAULT


def test_weekday_is_site_local() -> None:
    late_sunday_utc = datetime(2026, 1, 4, 23, 30, tzinfo=UTC)  # a Sunday in UTC, Monday in Berlin
    assert local_weekday(late_sunday_utc, "UTC") == 6
    assert local_weekday(late_sunday_utc, "Europe/Berlin") == 0
    p = past_session("A", late_sunday_utc, datetime(2026, 1, 5, 7, 30, tzinfo=UTC), 12_000, "Europe/Berlin")
    assert (p.weekday, p.stay_s, p.energy_wh) == (0, 8 * H, 12_000)


past = st.builds(
    PastSession,
    token=st.sampled_from(["A", "B", "C", None]),
    weekday=st.integers(0, 6),
    stay_s=st.floats(0, 4 * 86_400, allow_nan=False),
    energy_wh=st.floats(0, 150_000, allow_nan=False),
)


@given(st.lists(past, max_size=60), st.sampled_from(["A", "B", "C", "D", None]), st.integers(0, 6), st.integers(1, 6))
def test_estimates_lie_within_the_group_they_come_from_and_fall_back(
    history: list[PastSession], token: str | None, weekday: int, min_sessions: int
) -> None:
    settings = EstimateSettings(min_sessions=min_sessions)
    h = History(history, settings)
    e = h.estimate(token, weekday)
    assert e.stay_s >= 0 and e.energy_wh >= 0
    usable = [
        p
        for p in history
        if settings.min_stay_s <= p.stay_s <= settings.max_stay_s and p.energy_wh >= settings.min_energy_wh
    ]
    same_day = [p for p in usable if p.token is not None and p.token == token and p.weekday == weekday]
    same_card = [p for p in usable if p.token is not None and p.token == token]
    if len(same_day) >= min_sessions:
        expected_source, group = Source.TOKEN_WEEKDAY, same_day
    elif len(same_card) >= min_sessions:
        expected_source, group = Source.TOKEN, same_card
    elif len(usable) >= min_sessions:
        expected_source, group = Source.SITE, usable
    else:
        expected_source, group = Source.DEFAULT, []
    assert e.source is expected_source
    assert e.sessions == len(group)
    if group:
        assert min(p.stay_s for p in group) <= e.stay_s <= max(p.stay_s for p in group)
        assert min(p.energy_wh for p in group) <= e.energy_wh <= max(p.energy_wh for p in group)
        # The safe side: never a later departure than the group's median.
        assert e.stay_s <= quantile([p.stay_s for p in group], 0.5) + 1e-6
    else:
        assert (e.stay_s, e.energy_wh) == (settings.default_stay_s, settings.default_energy_wh)
