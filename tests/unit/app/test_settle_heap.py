"""``ems.app.settle_heap``: start-up garbage is collected, what is alive is frozen out of the
collector's full passes."""

from __future__ import annotations

import gc
import weakref

from ems.app import settle_heap


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


def test_start_up_garbage_is_collected_and_the_live_heap_frozen() -> None:
    kept, dropped = _Node(), _Node()
    dropped_ref = weakref.ref(dropped)
    del dropped
    gc.disable()  # no automatic pass in between: the collection seen is settle_heap's own
    try:
        assert dropped_ref() is not None
        settle_heap()
        assert dropped_ref() is None  # collected before the freeze, not frozen with the rest
        assert gc.get_freeze_count() > 1000  # the modules, the test session, ...
        assert not any(o is kept for o in gc.get_objects())  # frozen objects are out of the collector's view
    finally:
        gc.unfreeze()
        gc.enable()
    assert any(o is kept for o in gc.get_objects())
