"""The ``ems`` command: argument parsing, then ``ems.app``.

Every failure a user can cause ends as one line on stderr and a non-zero exit:
2 for bad configuration or input, 1 for a runtime failure, 130 for Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import secrets
import shutil
import sys
from collections.abc import Callable, Sequence
from datetime import date, datetime
from pathlib import Path
from types import ModuleType

from pydantic import ValidationError

from ems import __version__
from ems.config import Settings
from ems.errors import ConfigError, EmsError, InvalidInput, SiteFileError
from ems.logs import configure_logging

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
DEMO_DIR = Path("ems-data") / "demo"
"""Where ``ems demo`` keeps its database and journal, apart from what ``ems serve`` uses."""

# Commands whose implementation lives with their feature: (module, what it is).
FEATURE_COMMANDS: dict[str, tuple[str, str]] = {
    "simulate": ("ems.sim.cli", "run simulated OCPP charging stations against a central system"),
    "optimize": ("ems.optimize_cli", "plan charging for a JSON instance (offline, what-if)"),
}


def _feature_module(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name:
            return None
        raise


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ems", description="Smart-charging and energy management for EV sites.")
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR (default: EMS_LOG_LEVEL or INFO)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def with_servers(p: argparse.ArgumentParser) -> None:
        p.add_argument("--api-host")
        p.add_argument("--api-port", type=int)
        p.add_argument("--ocpp-host")
        p.add_argument("--ocpp-port", type=int)
        p.add_argument("--site", type=Path, help="site file (TOML) with circuits, stations and limits")

    p = sub.add_parser("serve", help="run the central system: API, OCPP server, controller, MQTT")
    with_servers(p)
    p = sub.add_parser("demo", help="serve plus simulated stations on an embedded database")
    with_servers(p)
    p.add_argument("--duration", type=float, help="run this many seconds, print a summary and exit")
    p.add_argument(
        "--stations",
        type=int,
        default=None,
        help="simulated stations of each OCPP version, two EVSEs each, on a site sized for them (default 2)",
    )

    for command, (module_name, help_text) in FEATURE_COMMANDS.items():
        module = _feature_module(module_name)
        p = sub.add_parser(command, help=help_text if module else f"{help_text} (not available yet)")
        if module is not None:
            module.add_arguments(p)
        else:
            p.add_argument("rest", nargs=argparse.REMAINDER)

    p = sub.add_parser("db", help="database maintenance")
    db_sub = p.add_subparsers(dest="db_command", metavar="DB_COMMAND", required=True)
    db_sub.add_parser("upgrade", help="apply pending migrations")
    db_sub.add_parser("rebuild-rollups", help="recompute the analytics rollups from the raw rows")
    p = db_sub.add_parser("analyst-role", help="create a read-only PostgreSQL role for analysts (views, rollups)")
    p.add_argument("name", help="the role (login) name")
    p.add_argument("--password", help="its password (else set it yourself, or use trust/peer auth)")

    p = sub.add_parser("report", help="write the monthly site report (self-contained HTML with charts)")
    p.add_argument("--site", required=True, dest="site_id", help="the site id (from the site file)")
    p.add_argument("--month", required=True, help="YYYY-MM, site-local")
    p.add_argument("--out", type=Path, required=True, help="the HTML file to write")
    p.add_argument("--site-file", type=Path, dest="site", help="site file (default: EMS_SITE_FILE)")

    p = sub.add_parser("station", help="manage stations")
    st_sub = p.add_subparsers(dest="station_command", metavar="STATION_COMMAND", required=True)
    p = st_sub.add_parser("add", help="register a station")
    p.add_argument("id")
    p.add_argument("--password", help="HTTP Basic password for security profile 1")

    p = sub.add_parser("card", help="manage RFID cards")
    card_sub = p.add_subparsers(dest="card_command", metavar="CARD_COMMAND", required=True)
    p = card_sub.add_parser("add", help="register a card")
    p.add_argument("uid")
    p.add_argument("--blocked", action="store_true")
    p.add_argument("--expires", type=datetime.fromisoformat, help="ISO 8601 with offset, e.g. 2027-01-01T00:00Z")
    p.add_argument("--label")

    p = sub.add_parser("apikey", help="manage API keys")
    key_sub = p.add_subparsers(dest="apikey_command", metavar="APIKEY_COMMAND", required=True)
    p = key_sub.add_parser("create", help="create an API key and print it once")
    p.add_argument("--name", required=True)
    p.add_argument("--role", choices=["admin", "operator", "analyst", "driver"], default="operator")
    p.add_argument("--expires-in-days", type=int, help="refuse the key after this many days (default: never)")

    p = sub.add_parser("operator", help="manage operator accounts of the console (/console)")
    op_sub = p.add_subparsers(dest="operator_command", metavar="OPERATOR_COMMAND", required=True)
    p = op_sub.add_parser("create", help="create an operator account (asks for the password)")
    p.add_argument("--email", required=True)
    p.add_argument("--role", choices=["admin", "operator", "analyst"], default="operator")
    p.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")

    p = sub.add_parser("qr", help="print a PDF sheet of QR stickers (one per EVSE) for a site")
    p.add_argument("--site", dest="site_id", required=True, help="site id (stations of the site file and the database)")
    p.add_argument("--site-file", type=Path, help="site file (TOML) with the site's stations and EVSEs")
    p.add_argument("--out", type=Path, default=Path("stickers.pdf"), help="the PDF to write (default stickers.pdf)")

    sub.add_parser("version", help="print the version")
    return parser


def _settings(args: argparse.Namespace, **overrides: object) -> Settings:
    values: dict[str, object] = {}
    for name in ("api_host", "api_port", "ocpp_host", "ocpp_port", "log_level"):
        value = getattr(args, name, None)
        if value is not None:
            values[name] = value
    site = getattr(args, "site", None)
    if site is not None:
        values["site_file"] = site
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def _configure_logging(settings: Settings) -> None:
    configure_logging(settings.log_level, settings.log_format)


def _cmd_serve(args: argparse.Namespace) -> int:
    from ems import app

    settings = _settings(args)
    _configure_logging(settings)
    asyncio.run(app.serve(settings))
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    from ems.app import demo
    from ems.sim.demo import DEMO_MAX_STATIONS_PER_VERSION, DEMO_STATIONS_PER_VERSION

    if args.duration is not None and args.duration <= 0:
        raise InvalidInput("--duration must be a positive number of seconds")
    stations = DEMO_STATIONS_PER_VERSION if args.stations is None else args.stations
    if not 1 <= stations <= DEMO_MAX_STATIONS_PER_VERSION:
        raise InvalidInput(
            f"--stations must be from 1 to {DEMO_MAX_STATIONS_PER_VERSION} (stations of each OCPP version)"
        )
    # A directory of its own, emptied first: the demo's database and OCPP journal must never mix
    # with what `ems serve` keeps in the data directory (a journal is replayed at start).
    demo_dir = DEMO_DIR
    shutil.rmtree(demo_dir, ignore_errors=True)
    demo_dir.mkdir(parents=True)
    overrides: dict[str, object] = {
        "database_url": f"sqlite:///{demo_dir / 'demo.db'}",
        "data_dir": demo_dir,
        "ocpp_auto_register": True,
        # The simulated stations register themselves on first connect, without passwords.
        "ocpp_require_password": False,
        # Drivers top up through the built-in test payment provider (labelled "Test payment").
        "web_test_payments": True,
    }
    base = _settings(args)
    if base.admin_api_key is None:
        key = "demo-" + secrets.token_urlsafe(16)
        overrides["admin_api_key"] = key
        print(f"ems demo: admin API key for this run: {key}", flush=True)
    if base.web_secret is None:  # the demo's database is fresh each run: a key for this run only, said once
        overrides["web_secret"] = secrets.token_urlsafe(32)
    settings = _settings(args, **overrides)
    _configure_logging(settings)
    summary = asyncio.run(demo.demo(settings, args.duration, stations))
    for line in summary.lines():
        print(f"ems demo: {line}")
    return EXIT_OK


def _cmd_feature(args: argparse.Namespace) -> int:
    module_name, _ = FEATURE_COMMANDS[args.command]
    module = _feature_module(module_name)
    if module is None:
        print(f"ems {args.command}: not available yet in ems {__version__}", file=sys.stderr)
        return EXIT_FAILED
    result: int = module.run(args)
    return result


def _cmd_db(args: argparse.Namespace) -> int:
    from ems.app.commands import upgrade_database

    settings = _settings(args)
    if args.db_command == "rebuild-rollups":
        from ems.app.commands import rebuild_rollups

        counts = asyncio.run(rebuild_rollups(settings))
        print("ems db rebuild-rollups: " + ", ".join(f"{n} {what.replace('_', ' ')}" for what, n in counts.items()))
        return EXIT_OK
    if args.db_command == "analyst-role":
        from ems.app.commands import analyst_role

        schema = asyncio.run(analyst_role(settings, args.name, args.password))
        print(f"ems db analyst-role: {args.name} can read the analytics views in schema {schema} and write nothing")
        return EXIT_OK
    applied = asyncio.run(upgrade_database(settings))
    print(
        f"ems db upgrade: {len(applied)} migration(s) applied"
        + (f": {', '.join(map(str, applied))}" if applied else "")
    )
    return EXIT_OK


def _cmd_station(args: argparse.Namespace) -> int:
    from ems.app.commands import add_station

    station = asyncio.run(add_station(_settings(args), args.id, args.password))
    print(f"ems station add: registered {station.id}" + (" with a password" if station.password_hash else ""))
    return EXIT_OK


def _cmd_card(args: argparse.Namespace) -> int:
    from ems.app.commands import add_card

    card = asyncio.run(
        add_card(_settings(args), args.uid, blocked=args.blocked, expires=args.expires, label=args.label)
    )
    print(f"ems card add: registered {card.uid} ({card.status.value})")
    return EXIT_OK


def _cmd_apikey(args: argparse.Namespace) -> int:
    from ems.app.commands import create_api_key

    key, record = asyncio.run(
        create_api_key(_settings(args), args.name, args.role, expires_in_days=args.expires_in_days)
    )
    expiry = f", expires {record.expires_at:%Y-%m-%d %H:%M} UTC" if record.expires_at else ""
    print(f"ems apikey create: {record.role.value} key {record.id} ({record.name}{expiry}); shown once:")
    print(key)
    return EXIT_OK


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    import getpass

    first = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != first:
        raise InvalidInput("the passwords differ")
    return first


def _cmd_operator(args: argparse.Namespace) -> int:
    from ems.app.commands import create_operator

    password = _read_password(args.password_stdin)
    account = asyncio.run(create_operator(_settings(args), args.email, password, args.role))
    print(f"ems operator create: {account.role.value} {account.email} (id {account.id}); sign in at /console")
    return EXIT_OK


def _cmd_qr(args: argparse.Namespace) -> int:
    from ems.app.commands import print_stickers

    settings = _settings(args, **({"site_file": args.site_file} if args.site_file else {}))
    out, count = asyncio.run(print_stickers(settings, args.site_id, args.out))
    print(f"ems qr: {count} sticker(s) for site {args.site_id} in {out} (URLs under {settings.public_base_url()})")
    return EXIT_OK


def _cmd_report(args: argparse.Namespace) -> int:
    from ems.app.commands import site_report

    try:
        month = date.fromisoformat(f"{args.month}-01")
    except ValueError:
        month = None
    if month is None or len(args.month) != 7:
        raise InvalidInput("bad month", [f"--month: want YYYY-MM, got {args.month!r}"])
    page = asyncio.run(site_report(_settings(args), args.site_id, month))
    args.out.write_text(page, encoding="utf-8")
    print(f"ems report: {args.site_id} {args.month} written to {args.out} ({len(page) // 1024} KiB)")
    return EXIT_OK


def _cmd_version(_: argparse.Namespace) -> int:
    print(f"ems {__version__}")
    return EXIT_OK


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "serve": _cmd_serve,
    "demo": _cmd_demo,
    "simulate": _cmd_feature,
    "optimize": _cmd_feature,
    "db": _cmd_db,
    "station": _cmd_station,
    "card": _cmd_card,
    "apikey": _cmd_apikey,
    "operator": _cmd_operator,
    "qr": _cmd_qr,
    "version": _cmd_version,
    "report": _cmd_report,
}


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error a TaskGroup failed with, preferring one of ours over cancellations."""
    leaves: list[BaseException] = []
    stack: list[BaseException] = [group]
    while stack:
        exc = stack.pop()
        if isinstance(exc, BaseExceptionGroup):
            stack.extend(reversed(exc.exceptions))
        else:
            leaves.append(exc)
    return next((e for e in leaves if isinstance(e, EmsError | ValidationError)), leaves[0])


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        try:
            return COMMANDS[args.command](args)
        except BaseExceptionGroup as group:
            raise _first_leaf(group) from group
    except ValidationError as exc:
        print("ems: invalid settings:", file=sys.stderr)
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"])
            print(f"  - EMS_{field.upper()}: {err['msg']}", file=sys.stderr)
        return EXIT_USAGE
    except (SiteFileError, InvalidInput) as exc:
        print(f"ems: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ConfigError as exc:
        print(f"ems: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except EmsError as exc:
        print(f"ems: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
