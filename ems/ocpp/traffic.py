"""Counters of OCPP traffic for ``/metrics``: plain numbers, kept by the links, read at scrape time.

Shared by every connection of one server (a link's own counters end with its connection).
No station ids: a label per station would grow without bound.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass(slots=True)
class OcppTraffic:
    calls_in: Counter[tuple[str, str]] = field(default_factory=Counter)
    """CALLs received, by (OCPP version, action); actions we do not know are counted as ``other``."""
    calls_out: Counter[tuple[str, str]] = field(default_factory=Counter)
    """CALLs we sent to stations (commands, profiles), by (version, action)."""
    call_errors_out: Counter[tuple[str, str]] = field(default_factory=Counter)
    """CALLERRORs we answered, by (version, error code)."""
    call_errors_in: Counter[tuple[str, str]] = field(default_factory=Counter)
    """CALLERRORs stations answered to our CALLs, by (version, error code)."""
