"""The nesting bound checked before an inbound frame is parsed."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from ems.ocpp.validation import MAX_JSON_DEPTH, message_id_of, nesting_exceeds


def _depth(value: object) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


def test_deep_frames_are_caught_before_parsing() -> None:
    deep = '[2,"m1","Heartbeat",' + "[" * 100_000 + "]" * 100_000 + "]"
    assert nesting_exceeds(deep) and nesting_exceeds(deep.encode())
    assert message_id_of(deep) == "m1" and message_id_of("[[[[") == "-1"
    assert not nesting_exceeds('[2,"m2","DataTransfer",{"vendorId":"v","data":"' + "[" * 5000 + '\\"]"}]')
    assert not nesting_exceeds('[2,"m3","Heartbeat",{}]')


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab'),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(alphabet='[]{}"\\ab', max_size=3), inner, max_size=3)
    ),
    max_leaves=60,
)


@given(json_values, st.integers(min_value=0, max_value=8))
def test_the_bound_agrees_with_the_parsed_depth(value: object, limit: int) -> None:
    assert nesting_exceeds(json.dumps(value), limit) == (_depth(value) > limit)
    assert MAX_JSON_DEPTH >= 16
