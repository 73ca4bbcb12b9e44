"""Departure and energy from history (issue 12, item 5): replayed workplace days, defaults against estimates.

Each card has a habit (arrives 8-9 h, stays 7-9 h, 10-30 kWh; on Fridays it leaves 1.5 h
earlier) with day-to-day noise. Eight weeks of its past sessions feed ``ems.optimizer.estimates``;
then test days are replayed online (re-plan every 15-minute slot with the sessions arrived so
far, the controller's ``RollingPlanner``) where no EV and no driver says when it leaves or how
much it wants. Three ways to plan:

- ``defaults``: 8 h and 80 kWh for every session (before this change);
- ``estimates``: the card's estimate (per weekday, else per card, else site-wide);
- ``told``: the true departure and energy, as if every EV said them (the upper bound).

The demand the planner sees comes from the controller's own ``_demand`` (overstay and headroom
rules included). Executed: a car takes at most what it still needs, and leaves at its true time.
Reported: energy delivered as a share of what the cars needed, sessions fully met (>= 99 %).

    python -m benchmarks.history_report [--cards 100] [--days 5]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, replace
from datetime import timedelta

import numpy as np

from benchmarks.workplace import DAY_START, workplace_day
from ems.controller.planning import PlanningSettings, _demand
from ems.controller.state import LiveSession
from ems.optimizer.estimates import Estimate, EstimateSettings, History, PastSession, Source
from ems.optimizer.mpc import RollingPlanner, roll
from ems.optimizer.plan import Options
from ems.optimizer.snapshot import Snapshot

SLOTS = 96
SLOT_S = 900
WEEKS = 8


@dataclass(frozen=True, slots=True)
class Visit:
    card: str
    arrival_h: float
    stay_h: float
    energy_wh: float


@dataclass(frozen=True, slots=True)
class Habit:
    arrival_h: float
    stay_h: float
    energy_wh: float

    def visit(self, card: str, weekday: int, rng: np.random.Generator) -> Visit:
        friday = 1.5 if weekday == 4 else 0.0
        return Visit(
            card,
            float(np.clip(self.arrival_h + rng.normal(0, 0.25), 6.0, 11.0)),
            float(np.clip(self.stay_h - friday + rng.normal(0, 0.5), 2.0, 12.0)),
            float(np.clip(self.energy_wh * rng.normal(1.0, 0.15), 2_000.0, 60_000.0)),
        )


def habits(cards: int, rng: np.random.Generator) -> dict[str, Habit]:
    return {
        f"card{i}": Habit(rng.uniform(8.0, 9.0), rng.uniform(7.0, 9.0), rng.uniform(10_000.0, 30_000.0))
        for i in range(cards)
    }


def history(cards: dict[str, Habit], rng: np.random.Generator, settings: EstimateSettings) -> History:
    past = [
        PastSession(card, weekday, v.stay_h * 3600, v.energy_wh)
        for _ in range(WEEKS)
        for weekday in range(5)
        for card, habit in cards.items()
        for v in (habit.visit(card, weekday, rng),)
    ]
    return History(past, settings)


def replay_day(
    site: Snapshot, visits: list[Visit], weekday: int, mode: str, hist: History, settings: PlanningSettings
) -> tuple[float, int]:
    """Delivered share of the need and sessions fully met, re-planning every slot."""
    day_end = DAY_START + timedelta(seconds=SLOT_S * SLOTS)
    start = {v.card: DAY_START + timedelta(hours=v.arrival_h) for v in visits}
    leave = {v.card: min(start[v.card] + timedelta(hours=v.stay_h), day_end) for v in visits}
    need = {v.card: v.energy_wh for v in visits}
    evse = {v.card: f"e{i}" for i, v in enumerate(visits)}
    delivered = dict.fromkeys(need, 0.0)
    planner = RollingPlanner(Options(time_limit_s=5.0))
    for t in range(SLOTS):
        now = DAY_START + timedelta(seconds=SLOT_S * t)
        present = [v for v in visits if start[v.card] <= now < leave[v.card]]
        demands = []
        for v in present:
            live = LiveSession(v.card, "site", 1, start[v.card], id_tag=v.card, delivered_wh=delivered[v.card])
            estimate: Estimate | None = None
            if mode == "told":
                live.departure_at, live.energy_requested_wh = leave[v.card], need[v.card]
            elif mode == "estimates":
                found = hist.estimate(v.card, weekday)
                estimate = None if found.source is Source.DEFAULT else found
            d = _demand(live, evse[v.card], now, settings, estimate)
            demands.append(replace(d, departure=min(d.departure, day_end)))
        if not demands:
            continue
        view = roll(replace(site, sessions=tuple(demands)), t, now=now)
        plan = planner.plan(view)
        for k, sid in enumerate(plan.session_ids):
            wh = plan.power_w[k, 0] * SLOT_S / 3600.0
            delivered[sid] += min(wh, max(0.0, need[sid] - delivered[sid]))  # a full car stops drawing
    total = sum(need.values())
    got = sum(min(delivered[c], need[c]) for c in need)
    met = sum(1 for c in need if delivered[c] >= 0.99 * need[c])
    return got / total, met


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=100)
    parser.add_argument("--days", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stay-quantile", type=float, default=EstimateSettings().stay_quantile)
    parser.add_argument("--energy-quantile", type=float, default=EstimateSettings().energy_quantile)
    parser.add_argument("--headroom-wh", type=float, default=PlanningSettings().estimate_headroom_wh)
    parser.add_argument("--modes", default="defaults,estimates,told")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    cards = habits(args.cards, rng)
    estimate_settings = EstimateSettings(stay_quantile=args.stay_quantile, energy_quantile=args.energy_quantile)
    hist = history(cards, rng, estimate_settings)
    settings = PlanningSettings(slot_s=SLOT_S, horizon_slots=SLOTS, estimate_headroom_wh=args.headroom_wh)
    site = workplace_day(args.cards, SLOTS, seed=args.seed)  # its EVSEs, feeders and site limit
    print(
        f"{args.cards} cards, {args.days} replayed weekdays, {WEEKS} weeks of history, re-plan every 15 min; "
        f"stay q{args.stay_quantile:g}, energy q{args.energy_quantile:g}, headroom {args.headroom_wh:g} Wh"
    )
    print("| mode | energy delivered / needed | sessions fully met | wall s |")
    print("|---|---|---|---|")
    days = [(weekday % 5, [h.visit(c, weekday % 5, rng) for c, h in cards.items()]) for weekday in range(args.days)]
    for mode in args.modes.split(","):
        shares: list[float] = []
        met = 0
        started = time.perf_counter()
        for weekday, visits in days:
            share, full = replay_day(site, visits, weekday, mode, hist, settings)
            shares.append(share)
            met += full
        wall = time.perf_counter() - started
        total = args.cards * len(days)
        print(f"| {mode} | {np.mean(shares):.1%} | {met}/{total} ({met / total:.1%}) | {wall:.1f} |")


if __name__ == "__main__":
    main()
