"""No background task outside supervision (issue 10): every ``create_task`` / ``ensure_future`` in the
service code is accounted for here, with why it is watched. A new one fails this test until it is
added with its reason (or, better, run under ``ems.supervisor`` or a ``TaskGroup``)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[3] / "ems"
SPAWN = re.compile(r"\b(create_task|ensure_future)\(")

ACCOUNTED: dict[str, tuple[int, str]] = {
    "api/server.py": (1, "uvicorn's serve task: awaited by ApiServer.run"),
    "app/__init__.py": (2, "tasks of serve's TaskGroup (the supervised components, announce)"),
    "app/demo.py": (3, "tasks of the demo's TaskGroup (the supervised components, timer, capacity report)"),
    "clock.py": (2, "sleep_until_set: waiters awaited and cancelled in place"),
    "controller/loop.py": (
        5,
        "tasks of the controller's TaskGroup (events, plans, history refresh, capability queries, capacity cuts)",
    ),
    "controller/sending.py": (
        1,
        "one profile send: _one turns every adapter failure into a result; a send still out after the wave's "
        "wait stays in RoundRunner._tasks (close() at the controller's stop awaits them, then cancels)",
    ),
    "grid/mqtt.py": (4, "tasks of the adapter's TaskGroups"),
    "ocpp/journal.py": (
        1,
        "the journal writer: watched by OcppRuntime.run, its failure logged and fails the component",
    ),
    "ocpp/runtime.py": (4, "the supervised applier, the watched server, the announce task; all awaited in run"),
    "ocpp/service.py": (1, "a shielded storage call: awaited, or kept with a done-callback that logs its failure"),
    "services/billing_listener.py": (
        2,
        "the sweep (watched: its failure fails the listener); the queue getter (handled, or cancelled if not done)",
    ),
    "services/capacity.py": (1, "the audit writer, in the service's TaskGroup"),
    "supervisor.py": (2, "the supervisor's own TaskGroup; the slow-stop report (cancelled and awaited)"),
    "tasks.py": (1, "wait_any: event waiters, cancelled before it returns, also when its caller is cancelled"),
}
"""Service code only: ``ems/sim`` is test tooling (simulated stations), not part of a running ems."""


def test_every_task_in_the_service_code_is_supervised_or_watched() -> None:
    found: dict[str, int] = {}
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if relative.startswith("sim/"):
            continue
        count = len(SPAWN.findall(path.read_text(encoding="utf-8")))
        if count:
            found[relative] = count
    assert found == {name: count for name, (count, _) in ACCOUNTED.items()}
