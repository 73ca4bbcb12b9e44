"""Dispatch ordering on plain values: what is sent, when, and in which wave."""

from datetime import UTC, datetime, timedelta

from ems.controller.budget import SITE, Budget, EvsePlace, Limits, NodeLimits
from ems.controller.dispatch import Desired, Dispatcher, DispatchSettings, Kind
from ems.domain.commands import ChargingSchedulePeriod, CommandStatus, SetChargingLimit
from ems.domain.composite import Hardware
from ems.domain.units import ALL_PHASES

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
HW = Hardware(32.0, 3)
PLACE = EvsePlace(None, ALL_PHASES, 230.0)


def tx(evse: int, *limits: float, at: datetime = T0, tx_id: str = "7") -> SetChargingLimit:
    return SetChargingLimit(
        evse_id=evse,
        profile_id=1000 + evse,
        purpose="TxProfile",
        stack_level=1,
        rate_unit="A",
        periods=tuple(
            ChargingSchedulePeriod(start_offset_s=300 * i, limit=a, number_phases=3) for i, a in enumerate(limits)
        ),
        start_at=at,
        duration_s=300 * len(limits),
        transaction_id=tx_id,
    )


def installed(d: Dispatcher, station: str, command: SetChargingLimit) -> None:
    """Send and accept ``command`` (a round of its own)."""
    rnd = d.classify([Desired(station, command)], T0, 0.0)
    for send in d.first_wave(rnd) + d.next_wave(rnd, _budget(d, 1e9), {(station, command.evse_id): PLACE}):
        d.answered(send, CommandStatus.ACCEPTED)


def _budget(d: Dispatcher, capacity_w: float, now: datetime = T0) -> Budget:
    limits = Limits(now, 300, (NodeLimits(SITE, None, (capacity_w,) * 12, {}),))
    return d.budget(limits, {k: PLACE for k in d.beliefs}, now)


def dispatcher() -> Dispatcher:
    d = Dispatcher(DispatchSettings(deadband_a=1.0, min_interval_s=10.0, refresh_before_end_s=600.0))
    for station in ("A", "B"):
        d.belief(station, 1, HW).transaction("7", T0)
        installed(d, station, DEFAULT)
    return d


DEFAULT = SetChargingLimit(
    evse_id=1,
    profile_id=901,
    purpose="TxDefaultProfile",
    rate_unit="A",
    periods=(ChargingSchedulePeriod(start_offset_s=0, limit=0.0),),
)


def test_a_change_in_a_later_period_is_sent_not_only_the_first() -> None:
    d = dispatcher()
    installed(d, "A", tx(1, 16, 16, 16))
    rnd = d.classify([Desired("A", tx(1, 16, 16, 8))], T0 + timedelta(seconds=20), 20.0)
    assert [x.command.periods[-1].limit for x in rnd.cuts] == [8], "the third period is lower: a cut, sent at once"


def test_an_unchanged_profile_is_not_sent_again_until_the_station_reconnects() -> None:
    d = dispatcher()
    installed(d, "A", tx(1, 16, 16, 16))
    assert d.classify([Desired("A", tx(1, 16, 16, 16))], T0 + timedelta(seconds=20), 20.0).cuts == []
    d.connected("A")
    rnd = d.classify([Desired("A", tx(1, 16, 16, 16))], T0 + timedelta(seconds=20), 20.0)
    assert len(rnd.cuts) == 1, "after a reconnect everything is installed again"


def test_raises_wait_for_the_cuts_they_need_and_a_lost_cut_keeps_the_old_limit() -> None:
    d = dispatcher()
    installed(d, "A", tx(1, 16, 16, 16))
    installed(d, "B", tx(1, 16, 16, 16))
    now = T0 + timedelta(seconds=30)
    # 32 A x 3 x 230 V = 22,080 W: A goes down to 8 A so that B may go up to 24 A.
    rnd = d.classify([Desired("A", tx(1, 8, 8, 8)), Desired("B", tx(1, 24, 24, 24))], now, 30.0)
    cuts = d.first_wave(rnd)
    assert [c.station_id for c in cuts] == ["A"] and [r.key for r in rnd.raises] == [("B", 1)]
    capacity = 32 * 3 * 230
    # The cut is still unanswered: A counts at its old 16 A, B must wait.
    assert d.next_wave(rnd, _budget(d, capacity, now), {k: PLACE for k in d.beliefs}) == []
    assert [h.key for h in rnd.pending] == [("B", 1)], "kept for the next wave"
    d.answered(cuts[0], CommandStatus.TIMEOUT)
    rnd = d.classify([Desired("B", tx(1, 24, 24, 24))], now, 30.0)
    assert d.next_wave(rnd, _budget(d, capacity, now), {k: PLACE for k in d.beliefs}) == [], (
        "timed out: maybe not applied"
    )
    # A's cut is sent again and accepted: now B fits.
    rnd = d.classify([Desired("A", tx(1, 8, 8, 8)), Desired("B", tx(1, 24, 24, 24))], now, 30.0)
    for c in d.first_wave(rnd):
        d.answered(c, CommandStatus.ACCEPTED)
    raises = d.next_wave(rnd, _budget(d, capacity, now), {k: PLACE for k in d.beliefs})
    assert [(r.station_id, r.kind) for r in raises] == [("B", Kind.RAISE)]


def test_deadband_and_minimum_interval_hold_small_or_early_raises() -> None:
    d = dispatcher()
    installed(d, "A", tx(1, 16, 16, 16))
    d.mark_sent(_fake_send(d), 0.0)
    rnd = d.classify([Desired("A", tx(1, 16.5, 16.5, 16.5))], T0 + timedelta(seconds=60), 60.0)
    assert not rnd.raises, "half an ampere up is noise"
    rnd = d.classify([Desired("A", tx(1, 20, 20, 20))], T0 + timedelta(seconds=5), 5.0)
    assert not rnd.raises, "a raise waits for the minimum interval"
    rnd = d.classify([Desired("A", tx(1, 20, 20, 20))], T0 + timedelta(seconds=60), 60.0)
    assert len(rnd.raises) == 1


def _fake_send(d: Dispatcher):  # type: ignore[no-untyped-def]
    from ems.controller.dispatch import Send

    return Send(0, "A", tx(1, 16, 16, 16), Kind.CUT)


def test_a_mixed_change_goes_out_as_its_step_down_first() -> None:
    d = dispatcher()
    installed(d, "A", tx(1, 32, 0, 32))
    now = T0 + timedelta(seconds=100)
    rnd = d.classify([Desired("A", tx(1, 16, 16, 16, at=now))], now, 100.0)
    assert [m.key for m in rnd.mixed] == [("A", 1)]
    sends = d.next_wave(rnd, _budget(d, 8 * 3 * 230, now), {k: PLACE for k in d.beliefs})
    assert [s.kind for s in sends] == [Kind.STEP_DOWN]
    step = sends[0].command
    limits = [p.limit for p in step.periods]
    assert max(limits) <= 16 and 0.0 in limits, "never above the old bound nor the new profile"
