"""The layout the README draws: rooms depend downward only, and nothing imports in a circle."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from tests.conftest import ROOT

APP = ROOT / "app"
# What each room may import from the app, besides itself and the foundations.
FOUNDATIONS = {
    "app",
    "app.errors",
    "app.deadline",
    "app.db",
    "app.models",
    "app.config",
    "app.wording",
}
MAY_IMPORT = {
    # runs untrusted code: knows nothing of questions, learners or the database
    "app.sandbox": {"app", "app.errors", "app.deadline"},
    "app.bank": FOUNDATIONS | {"app.sandbox"},  # data: the sandbox's pipeline specs, no more
    "app.checking": FOUNDATIONS | {"app.bank", "app.sandbox"},
}


def _modules() -> dict[str, Path]:
    found = {}
    for path in APP.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports() -> dict[str, set[str]]:
    """Every app module's imports of other app modules."""
    modules = _modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.level:
                raise AssertionError(
                    f"{name}: relative import (the layout test reads absolute ones)"
                )
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("app"):
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("app")]
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def _room(module: str) -> str:
    return ".".join(module.split(".")[:2])


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle in `graph`, if it has one (depth-first, colouring nodes)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_module_imports_itself_in_a_circle() -> None:
    assert _cycle(_imports()) is None


def test_no_room_imports_itself_in_a_circle() -> None:
    rooms: dict[str, set[str]] = defaultdict(set)
    for module, targets in _imports().items():
        rooms[_room(module)] |= {_room(t) for t in targets if _room(t) != _room(module)}
    rooms = {room: targets - {"app"} for room, targets in rooms.items()}
    assert _cycle(rooms) is None


def test_rooms_depend_downward_only() -> None:
    for module, targets in _imports().items():
        room = _room(module)
        if room not in MAY_IMPORT:
            continue
        allowed = MAY_IMPORT[room] | {room}
        wrong = sorted(t for t in targets if _room(t) not in allowed)
        assert not wrong, f"{module} imports {wrong}"
