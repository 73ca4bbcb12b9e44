"""The failed-authentication throttle: pure, time passed in."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ems.throttle import AuthThrottle, ThrottleSettings, retry_after_header
from tests.examples import examples

KEYS = ("ip:10.0.0.1", "station:CP1")


def test_free_failures_then_doubling_lockouts_up_to_the_cap() -> None:
    throttle = AuthThrottle(ThrottleSettings(free_failures=3, base_lockout_s=1.0, max_lockout_s=8.0))
    assert [throttle.failed(KEYS, 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert throttle.retry_after(KEYS, 0.0) is None
    lockouts = []
    now = 0.0
    for _ in range(6):
        lockouts.append(throttle.failed(KEYS, now))
        wait = throttle.retry_after(KEYS, now)
        assert wait == lockouts[-1]
        now += wait
        assert throttle.retry_after(KEYS, now) is None
    assert lockouts == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_either_key_locks_and_success_clears_only_the_identity() -> None:
    throttle = AuthThrottle(ThrottleSettings(free_failures=1))
    throttle.failed(("ip:a", "station:X"), 0.0)
    throttle.failed(("ip:a", "station:X"), 0.0)
    assert throttle.retry_after(("ip:b", "station:X"), 0.5) is not None, "same identity, other source"
    assert throttle.retry_after(("ip:a", "station:Y"), 0.5) is not None, "same source, other identity"
    assert throttle.retry_after(("ip:b", "station:Y"), 0.5) is None
    throttle.succeeded("station:X")
    assert throttle.retry_after(("ip:b", "station:X"), 0.5) is None
    assert throttle.retry_after(("ip:a", "station:Y"), 0.5) is not None, "the source stays counted"


def test_failures_are_forgotten_and_memory_is_bounded() -> None:
    throttle = AuthThrottle(ThrottleSettings(free_failures=2, forget_s=60.0, max_keys=10))
    throttle.failed(KEYS, 0.0)
    throttle.failed(KEYS, 0.0)
    throttle.failed(KEYS, 100.0)  # the first two were forgotten: this is the first again
    assert throttle.retry_after(KEYS, 100.0) is None
    for i in range(100):
        throttle.failed((f"ip:{i}",), 200.0)
    assert throttle.tracked() <= 10


@settings(max_examples=examples(100))
@given(st.lists(st.tuples(st.booleans(), st.floats(min_value=0, max_value=1_000)), max_size=60))
def test_lockouts_never_exceed_the_cap(steps: list[tuple[bool, float]]) -> None:
    s = ThrottleSettings(free_failures=2, max_lockout_s=30.0)
    throttle = AuthThrottle(s)
    now = 0.0
    for fail, dt in steps:
        now += dt
        if fail:
            assert 0.0 <= throttle.failed(KEYS, now) <= s.max_lockout_s
        else:
            wait = throttle.retry_after(KEYS, now)
            assert wait is None or 0 < wait <= s.max_lockout_s


def test_retry_after_is_a_whole_number_of_seconds_at_least_one() -> None:
    assert [retry_after_header(s) for s in (0.0, 0.2, 1.0, 1.01, 299.5)] == ["1", "1", "1", "2", "300"]


def test_the_cap_holds_at_a_clock_where_now_plus_cap_minus_now_rounds_up() -> None:
    """Found by EMS_PROPERTY_SCALE=10: at now = 8162.85695890001, (now + 30) - now = 30.0000000000009."""
    now = 8162.85695890001
    assert (now + 30.0) - now > 30.0
    s = ThrottleSettings(free_failures=0, base_lockout_s=30.0, max_lockout_s=30.0)
    throttle = AuthThrottle(s)
    assert throttle.failed(KEYS, now) == 30.0
    assert throttle.retry_after(KEYS, now) == 30.0
    assert retry_after_header(30.0) == "30"
