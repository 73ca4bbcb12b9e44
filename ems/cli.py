"""The ``ems`` command (being built; see issue 2)."""

from __future__ import annotations

import sys

from ems import __version__


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["version"]:
        print(f"ems {__version__}")
        return 0
    print("ems: this command is not built yet", file=sys.stderr)
    return 1
