"""``ems optimize INSTANCE.json``: plan an instance offline (what-if), print or write the schedule.

Exit codes: 0 planned (any status but ERROR), 1 the solver failed (status ERROR, the
fallback schedule is still written), 2 a bad instance or option (every problem listed on
stderr, no traceback).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ems.errors import InvalidInput, NotAvailable
from ems.optimizer.instance import current_limit_loss_from_json, schedule_to_json, snapshot_from_json
from ems.optimizer.lp import LpMethod
from ems.optimizer.phasor import DEFAULT_LOSS
from ems.optimizer.plan import Options, optimize
from ems.optimizer.schedule import Algorithm, SolveStatus


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("instance", type=Path, help="instance JSON (docs/schemas/instance.schema.json)")
    parser.add_argument("--out", type=Path, help="write the schedule JSON here (default: stdout)")
    parser.add_argument(
        "--algorithm", choices=[a.value for a in Algorithm], default=Algorithm.LP.value, help="default: lp"
    )
    parser.add_argument(
        "--solver",
        default="highs",
        help="highs (direct, default), or pulp-cbc, pulp-glpk, pulp-highs, ... (PuLP; slower to build)",
    )
    parser.add_argument("--time-limit", type=float, default=None, metavar="S", help="LP time limit in seconds")
    parser.add_argument("--method", choices=[m.value for m in LpMethod], default=LpMethod.AUTO.value)
    parser.add_argument("--no-min-current", action="store_true", help="skip the minimum-current repair")
    parser.add_argument(
        "--current-limit-loss",
        type=float,
        default=None,
        metavar="F",
        help="precision of the phasor (line-current) polygon: largest relative loss of a limit "
        "(default: the instance's current_limit_loss, else 0.005)",
    )
    parser.add_argument("--summary", action="store_true", help="print a one-line summary to stderr")


def run(args: argparse.Namespace) -> int:
    try:
        text = Path(args.instance).read_text(encoding="utf-8")
    except OSError as exc:
        print(f"ems optimize: cannot read {args.instance}: {exc.strerror}", file=sys.stderr)
        return 2
    try:
        data = json.loads(text)
        snapshot = snapshot_from_json(data)
        loss = current_limit_loss_from_json(data)
    except json.JSONDecodeError as exc:
        print(f"ems optimize: {args.instance} is not JSON: {exc.msg} (line {exc.lineno})", file=sys.stderr)
        return 2
    except InvalidInput as exc:
        print(f"ems optimize: {args.instance} has {len(exc.problems)} problem(s):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    if args.time_limit is not None and args.time_limit <= 0:
        print("ems optimize: --time-limit must be positive", file=sys.stderr)
        return 2
    if args.current_limit_loss is not None:
        if not 0 < args.current_limit_loss < 1:
            print("ems optimize: --current-limit-loss must be in (0, 1)", file=sys.stderr)
            return 2
        loss = args.current_limit_loss
    options = Options(
        algorithm=Algorithm(args.algorithm),
        solver=args.solver,
        time_limit_s=args.time_limit,
        method=LpMethod(args.method),
        min_current=not args.no_min_current,
        current_limit_loss=DEFAULT_LOSS if loss is None else loss,
    )
    try:
        schedule = optimize(snapshot, options)
    except NotAvailable as exc:
        print(f"ems optimize: {exc}", file=sys.stderr)
        return 2
    body = json.dumps(schedule_to_json(schedule), indent=1) + "\n"
    if args.out is None:
        sys.stdout.write(body)
    else:
        args.out.write_text(body, encoding="utf-8")
    if args.summary or args.out is not None:
        print(
            f"ems optimize: {schedule.status} ({schedule.algorithm}, {schedule.solver}) "
            f"{schedule.total_energy_wh / 1000:.3f} kWh, {schedule.fully_served()}/{len(schedule.session_ids)} "
            f"sessions fully served, {len(schedule.violations)} violation(s), {schedule.solve_s:.3f} s solve",
            file=sys.stderr,
        )
    return 1 if schedule.status is SolveStatus.ERROR else 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (``python -m ems.optimize_cli``) until ``ems`` dispatches here."""
    parser = argparse.ArgumentParser(prog="ems optimize", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
