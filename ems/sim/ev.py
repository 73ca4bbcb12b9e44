"""A pure battery model for simulated EVs: constant power up to a knee, then a linear taper.

Real EVs draw their maximum until roughly 80 % state of charge and then taper as the
cell voltage rises (constant-current / constant-voltage charging). Here: full power to
``taper_from_soc``, then linear down to ``min_taper_fraction`` of it at 100 %.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Ev:
    """An EV plugged in. ``soc`` is the state of charge, 0..1; energies in Wh, powers in W."""

    capacity_wh: float = 60_000.0
    soc: float = 0.3
    max_power_w: float = 11_000.0
    target_soc: float = 1.0
    departure_at: datetime | None = None
    taper_from_soc: float = 0.8
    min_taper_fraction: float = 0.1

    def acceptance_w(self) -> float:
        """The most the EV accepts now (W), from the taper curve."""
        if self.soc >= self.target_soc or self.soc >= 1.0:
            return 0.0
        if self.soc <= self.taper_from_soc:
            return self.max_power_w
        span = 1.0 - self.taper_from_soc
        fraction = 1.0 - (1.0 - self.min_taper_fraction) * (self.soc - self.taper_from_soc) / span
        return self.max_power_w * fraction

    def draw_w(self, limit_w: float | None) -> float:
        """Draw = min(charging-profile limit, what the EV accepts); ``None``: no limit installed."""
        accept = self.acceptance_w()
        return accept if limit_w is None else max(0.0, min(limit_w, accept))

    def charged(self, power_w: float, duration_s: float) -> tuple[Ev, float]:
        """The EV after drawing ``power_w`` for ``duration_s``; returns (EV, energy delivered in Wh)."""
        room_wh = max(0.0, (min(self.target_soc, 1.0) - self.soc) * self.capacity_wh)
        energy_wh = min(room_wh, max(0.0, power_w) * duration_s / 3600.0)
        return replace(self, soc=min(1.0, self.soc + energy_wh / self.capacity_wh)), energy_wh

    @property
    def full(self) -> bool:
        return self.acceptance_w() <= 0.0
