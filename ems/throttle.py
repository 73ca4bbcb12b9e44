"""Throttling of failed authentication, per source address and per claimed identity. Pure.

Used by the API (Bearer keys) and the OCPP server (station HTTP Basic). Every failure is
counted against two keys, the source (``ip:1.2.3.4``) and the identity it claimed
(``station:CP001``, ``key:<hash prefix>``). A key may fail ``free_failures`` times (5) in a
row without consequence; each further failure locks it out for ``base_lockout_s`` (1 s),
doubling up to ``max_lockout_s`` (300 s). While either key is locked out, attempts are
refused before any credential is checked (the API answers 429 with ``Retry-After``, the
OCPP server refuses the upgrade with 429 and ``Retry-After``). Failures are forgotten
``forget_s`` (15 min) after the last one; a success clears its identity (not its source:
one valid credential must not launder a source that guesses others).

Measured against the attack in issue 10 (200 wrong passwords in 5 s from one address):
the 6th failure locks the source out for 1 s, the 7th for 2 s, ...: 5 s buys ~8 password
checks instead of 200 (~0.25 s of scrypt instead of 6 s), the rest are refused unchecked.

A legitimate station sharing an id with an attacker can be locked out for up to
``max_lockout_s``; stations retry with back-off, and the per-identity limit is what stops
a guesser that rotates addresses. Memory is bounded: at most ``max_keys`` keys are kept,
the least recently failed dropped first.

Time comes in as an argument (``now``, monotonic seconds): no clock is read here.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ThrottleSettings:
    free_failures: int = 5
    base_lockout_s: float = 1.0
    max_lockout_s: float = 300.0
    forget_s: float = 900.0
    max_keys: int = 100_000


@dataclass(slots=True)
class _Entry:
    failures: int
    last_failure: float
    locked_until: float


class AuthThrottle:
    def __init__(self, settings: ThrottleSettings | None = None) -> None:
        self.settings = settings or ThrottleSettings()
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self.failures = 0
        """Failed authentications seen (for metrics)."""
        self.refused = 0
        """Attempts refused because a key was locked out (for metrics)."""

    def retry_after(self, keys: Sequence[str], now: float) -> float | None:
        """Seconds until an attempt under ``keys`` may be checked again; ``None``: go ahead."""
        wait = 0.0
        for key in keys:
            entry = self._live(key, now)
            if entry is not None and entry.locked_until > now:
                wait = max(wait, entry.locked_until - now)
        # (now + x) - now is x only up to rounding: never report more than the cap.
        wait = min(wait, self.settings.max_lockout_s)
        if wait > 0:
            self.refused += 1
            return wait
        return None

    def failed(self, keys: Sequence[str], now: float) -> float:
        """Count a failure against every key; returns the lockout it caused (0 while still free)."""
        self.failures += 1
        s = self.settings
        lockout = 0.0
        for key in keys:
            entry = self._live(key, now) or _Entry(0, now, now)
            entry.failures += 1
            entry.last_failure = now
            over = entry.failures - s.free_failures
            if over > 0:
                seconds = min(s.max_lockout_s, s.base_lockout_s * 2.0 ** min(over - 1, 30))
                entry.locked_until = max(entry.locked_until, now + seconds)
                lockout = max(lockout, min(s.max_lockout_s, entry.locked_until - now))
            self._entries[key] = entry
            self._entries.move_to_end(key)
        while len(self._entries) > s.max_keys:
            self._entries.popitem(last=False)
        return lockout

    def succeeded(self, identity: str) -> None:
        self._entries.pop(identity, None)

    def tracked(self) -> int:
        return len(self._entries)

    def _live(self, key: str, now: float) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if now - entry.last_failure > self.settings.forget_s and entry.locked_until <= now:
            del self._entries[key]
            return None
        return entry


def retry_after_header(seconds: float) -> str:
    """``Retry-After`` in whole seconds, at least 1 (RFC 9110: a non-negative integer)."""
    return str(max(1, math.ceil(seconds)))


_security_log = logging.getLogger("ems.security")


def security_event(event: str, **fields: object) -> None:
    """Log a security event (logger ``ems.security``, WARNING): ``event`` and its fields, also as
    structured ``extra`` (JSON logs carry them as keys). Never pass a secret in ``fields``."""
    text = " ".join(f"{k}={v}" for k, v in fields.items())
    _security_log.warning("security event %s: %s", event, text, extra={"security_event": event, **fields})
