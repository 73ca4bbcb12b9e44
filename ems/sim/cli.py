"""``ems simulate``: simulated charging stations against an OCPP server.

``ems simulate --url ws://HOST:PORT --stations N --version 1.6|2.0.1 [--password P] [--duration S]``
"""

from __future__ import annotations

import argparse
import asyncio
import logging

from ems.clock import SystemClock
from ems.domain.station import OcppVersion
from ems.sim.clock import ScaledClock
from ems.sim.fleet import DEFAULT_CARDS, FleetConfig, run_fleet

VERSIONS = {"1.6": OcppVersion.V16, "2.0.1": OcppVersion.V201}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default="ws://127.0.0.1:9000", help="OCPP server URL; the station id is appended")
    parser.add_argument("--stations", type=int, default=2, help="number of stations (default 2)")
    parser.add_argument("--version", choices=sorted(VERSIONS), default="1.6", help="OCPP version (default 1.6)")
    parser.add_argument("--password", default=None, help="HTTP Basic password (security profile 1)")
    parser.add_argument(
        "--duration", type=float, default=None, help="stop after S real seconds (default: run until ^C)"
    )
    parser.add_argument("--evses", type=int, default=2, help="EVSEs per station (default 2)")
    parser.add_argument("--speed", type=float, default=60.0, help="simulated seconds per real second (default 60)")
    parser.add_argument("--prefix", default="SIM", help="station id prefix (default SIM)")
    parser.add_argument("--card", action="append", default=None, help="id tag drivers present (repeatable)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")


def run(args: argparse.Namespace) -> int:
    if args.stations < 1 or args.evses < 1:
        print("ems simulate: --stations and --evses must be at least 1")
        return 2
    config = FleetConfig(
        url=args.url,
        stations=args.stations,
        version=VERSIONS[args.version],
        password=args.password,
        evses=args.evses,
        prefix=args.prefix,
        cards=tuple(args.card) if args.card else DEFAULT_CARDS,
        seed=args.seed,
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("ocpp").setLevel(logging.WARNING)
    clock = ScaledClock(SystemClock(), args.speed)
    try:
        result = asyncio.run(run_fleet(config, clock, duration_s=args.duration))
    except KeyboardInterrupt:
        return 130
    print(
        f"{result.stations} stations ({result.connected} connected at the end): "
        f"{result.sessions_started} sessions started, {result.sessions_stopped} stopped, "
        f"{result.energy_wh / 1000:.1f} kWh, {result.messages_sent} messages, {result.call_errors} refused"
    )
    return 0
