"""The pure core reads no clock: ``lint-imports`` keeps ``ems.clock`` and ``time`` out of its imports,
and this test catches what an import contract cannot: ``datetime.now()`` and friends on a class
that the core may import for its types."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[3] / "ems"
PURE = ["domain", "optimizer", "billing", "grid/capacity.py", "grid/payload.py", "ocpp/translate"]
CLOCK_CALLS = {
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("datetime", "today"),
    ("date", "today"),
    ("time", "time"),
    ("time", "time_ns"),
    ("time", "monotonic"),
    ("time", "localtime"),
}


def _files() -> list[Path]:
    out: list[Path] = []
    for part in PURE:
        path = ROOT / part
        out.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path])
    return out


def clock_calls(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            name = owner.id if isinstance(owner, ast.Name) else owner.attr if isinstance(owner, ast.Attribute) else ""
            if (name, node.func.attr) in CLOCK_CALLS:
                found.append(f"line {node.lineno}: {name}.{node.func.attr}()")
    return found


def test_the_check_sees_a_clock_read() -> None:
    assert clock_calls("import datetime\nx = datetime.datetime.now()") == ["line 2: datetime.now()"]
    assert clock_calls("from datetime import datetime\nx = datetime.fromisoformat('2026-01-01')") == []


@pytest.mark.parametrize("path", _files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_pure_module_reads_no_clock(path: Path) -> None:
    assert clock_calls(path.read_text()) == []
