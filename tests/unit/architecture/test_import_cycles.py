"""No import cycle anywhere in ``ems``: between modules, and between folders (packages).

The layer contracts themselves are in ``pyproject.toml`` (``lint-imports``); this test adds what a
contract cannot say in one line: the import graph of the whole package is acyclic. Deferred imports
inside functions count too (grimp reads every ``import`` statement), so a cycle cannot hide there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache

import grimp
import pytest


@cache
def _graph() -> grimp.ImportGraph:
    return grimp.build_graph("ems", cache_dir=None)


def _edges(nodes: Iterable[str], key: Mapping[str, str]) -> dict[str, set[str]]:
    graph = _graph()
    out: dict[str, set[str]] = {key[m]: set() for m in nodes}
    for importer in nodes:
        for imported in graph.find_modules_directly_imported_by(importer):
            if imported in key and key[imported] != key[importer]:
                out[key[importer]].add(key[imported])
    return out


def _cycles(edges: Mapping[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _modules() -> set[str]:
    return {m for m in _graph().modules if m == "ems" or m.startswith("ems.")}


def _folder(module: str) -> str:
    """The top-level folder under ``ems/`` a module lives in (``ems.api.routes.users`` -> ``ems.api``).

    A module directly in ``ems/`` (``ems.app``, ``ems.errors`` ...) is its own node: ``ems/`` holds both
    the composition root and the shared bottom layer, so as one node it would be a cycle by design.
    """
    return ".".join(module.split(".")[:2])


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_between_modules() -> None:
    modules = _modules()
    assert "ems.app" in modules and "ems.domain.money" in modules  # the graph is the real one
    cycles = _cycles(_edges(modules, {m: m for m in modules}))
    assert cycles == [], f"import cycles between modules: {cycles}"


def test_no_import_cycle_between_folders() -> None:
    modules = _modules()
    key = {m: _folder(m) for m in modules}
    cycles = _cycles(_edges(modules, key))
    assert cycles == [], f"import cycles between folders: {cycles}"


@pytest.mark.parametrize("module", ["ems.domain", "ems.ports", "ems.bus", "ems.errors"])
def test_bottom_layer_imports_nothing_above_it(module: str) -> None:
    graph = _graph()
    above = {"ems.app", "ems.cli", "ems.api", "ems.storage", "ems.sim", "ems.services", "ems.controller"}
    targets = {m for m in graph.modules if m == module or m.startswith(module + ".")}
    imported = {i for t in targets for i in graph.find_modules_directly_imported_by(t)}
    assert not {i for i in imported for a in above if i == a or i.startswith(a + ".")}
