"""How hard the property tests search: each test's example count times ``EMS_PROPERTY_SCALE``.

CI runs the defaults (a few seconds per test). A bug that shows up once in several hundred
examples slips through such a run now and then, so search harder on demand, e.g. before a
release or nightly: ``EMS_PROPERTY_SCALE=25 python -m pytest -q -p no:cacheprovider tests/unit``.
"""

from __future__ import annotations

import os


def examples(default: int) -> int:
    """``default`` Hypothesis examples, times ``EMS_PROPERTY_SCALE`` (a positive number, default 1)."""
    raw = os.environ.get("EMS_PROPERTY_SCALE", "1")
    try:
        scale = float(raw)
    except ValueError as exc:
        raise ValueError(f"EMS_PROPERTY_SCALE must be a number, not {raw!r}") from exc
    if not scale > 0:
        raise ValueError(f"EMS_PROPERTY_SCALE must be positive, not {raw!r}")
    return max(1, round(default * scale))
