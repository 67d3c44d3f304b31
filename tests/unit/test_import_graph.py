"""The ftk package has no import cycle between its modules (module-level imports, read with ast), and the
settings module imports nothing of the stages: a cycle or an upward import shows up here, named."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import HOME

SRC = HOME / "toolkit" / "src"


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in (SRC / "ftk").rglob("*.py")}
    edges: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.parse(path.read_text()).body:  # module level only: lazy imports are the next check's job
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            edges[name] |= {t for t in targets if t in modules and t != name}
    return edges


def test_no_import_cycle():
    edges = graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt) :], nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)


def test_settings_and_console_sit_below_every_stage():
    edges = graph()
    for low in ("ftk.settings", "ftk.console", "ftk.paths", "ftk.files"):
        upward = {m for m in edges[low] if m.startswith("ftk.") and m.split(".")[1] in ("commands", "cli")}
        assert not upward, f"{low} imports the CLI layer: {upward}"
