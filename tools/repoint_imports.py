"""Re-point ``from OLD import NAME`` statements after the layering refactor (issue 9).

Run from a worktree root: ``python tools/repoint_imports.py [paths...]`` (default: ems tests benchmarks),
then ``ruff check --fix . && ruff format .`` to sort the rewritten imports. Each moved name goes to the
module that now owns it; names not listed for a moved module go to its ``"*"`` entry.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

MOVES: dict[str, dict[str, str]] = {
    "ems.controller.bus": {"*": "ems.bus"},
    "ems.billing.tariff": {"*": "ems.domain.tariff"},
    "ems.billing.model": {
        "resolve_tariff_id": "ems.billing.pricing",
        "settled_cost": "ems.billing.ledger",
        "*": "ems.domain.billing",
    },
    "ems.billing.ledger": {
        **{
            n: "ems.domain.ledger"
            for n in (
                "Book",
                "MovementKind",
                "HoldStatus",
                "Entry",
                "Movement",
                "Hold",
                "Balance",
                "AccountState",
                "Decision",
            )
        },
        "*": "ems.billing.ledger",
    },
    "ems.billing.pricing": {
        **{
            n: "ems.domain.billing"
            for n in ("LineKind", "EnergyReading", "SessionUsage", "LineItem", "ChargeDetailRecord")
        },
        "*": "ems.billing.pricing",
    },
    "ems.ports": {
        "AuthorizationDecision": "ems.domain.card",
        "SiteLoadReading": "ems.domain.capacity",
        "SignalOutcome": "ems.domain.capacity",
        "SignalAudit": "ems.domain.capacity",
        "MAX_AUDIT_PAYLOAD_CHARS": "ems.domain.capacity",
        "PaymentCheckout": "ems.domain.billing",
        "LiveSessionView": "ems.domain.live",
        "SitePlanView": "ems.domain.live",
        "Authorizer": "ems.ports.control",
        "ChargerControl": "ems.ports.control",
        "SiteLoad": "ems.ports.grid",
        "CapacitySignals": "ems.ports.grid",
        "SiteMonitor": "ems.ports.monitor",
        **{
            n: "ems.ports.billing"
            for n in ("UserStore", "LedgerStore", "TariffStore", "CostStore", "PaymentProvider", "BillingStores")
        },
        "*": "ems.ports.stores",
    },
    "ems.billing.service": {"*": "ems.services.billing"},
    "ems.billing.wallet": {"*": "ems.services.wallet"},
    "ems.billing.charge": {"*": "ems.services.charge"},
    "ems.billing.listener": {"*": "ems.services.billing_listener"},
    "ems.grid.service": {"*": "ems.services.capacity"},
    "ems.billing.components": {"policy_from": "ems.app", "*": "ems.services.billing_setup"},
    "ems.billing.demo": {"*": "ems.sim.demo_billing"},
    "ems.app": {
        "Component": "ems.supervisor",
        "run_components": "ems.supervisor",
        "install_signal_handlers": "ems.supervisor",
        "DemoSummary": "ems.sim.demo",
        "summarize": "ems.sim.demo",
        "report_capacity_changes": "ems.sim.demo",
        "*": "ems.app",
    },
    # The split of the console, the driver pages and the control loop into modules per concern.
    "ems.controller.loop": {
        "ControllerSettings": "ems.controller.settings",
        "CapacityTimelines": "ems.controller.settings",
        "*": "ems.controller.loop",
    },
    "ems.console.routes": {
        **{n: "ems.console.context" for n in ("PREFIX", "PAGE_HEADERS", "field_errors", "Handler")},
        "TARIFF_FIELDS": "ems.console.pages.tariffs",
        "CARD_UID": "ems.console.pages.cards",
        "PHASE_COLORS": "ems.console.pages.load",
        "PHASE_WIDTHS": "ems.console.pages.load",
        "NO_ERROR": "ems.console.pages.stations",
        "*": "ems.console.routes",
    },
    "ems.web.driver": {
        "TOP_UP_CHOICES": "ems.web.pages.charger",
        "MAX_TOP_UP": "ems.web.pages.top_up",
        "*": "ems.web.context",
    },
}

_FROM = re.compile(r"^(?P<indent>[ \t]*)from (?P<mod>[\w.]+) import (?P<names>\([^)]*\)|[^\n]*)", re.M)


def _names(text: str) -> list[str]:
    text = re.sub(r"#[^\n]*", "", text.strip().strip("()"))
    return [n.strip() for n in text.replace("\n", " ").split(",") if n.strip()]


def rewrite(source: str) -> str:
    def one(m: re.Match[str]) -> str:
        mod = m.group("mod")
        if mod not in MOVES:
            return m.group(0)
        table = MOVES[mod]
        targets: dict[str, list[str]] = {}
        for spec in _names(m.group("names")):
            name = spec.split(" as ")[0].strip()
            targets.setdefault(table.get(name, table["*"]), []).append(spec)
        indent = m.group("indent")
        return "\n".join(f"{indent}from {t} import {', '.join(ns)}" for t, ns in targets.items())

    return _FROM.sub(one, source)


def main(paths: list[str]) -> None:
    for root in paths or ["ems", "tests", "benchmarks"]:
        for path in sorted(Path(root).rglob("*.py")) if Path(root).is_dir() else [Path(root)]:
            old = path.read_text()
            new = rewrite(old)
            if new != old:
                path.write_text(new)
                print(f"re-pointed {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
