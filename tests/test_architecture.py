"""The package's shape: no import cycle between its modules, and no module over ~600 lines."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "ganplify"
MAX_LINES = 600


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def _imports(path: Path) -> set[str]:
    """ganplify modules imported at module level (not under `if TYPE_CHECKING:`).

    Importing a.b.c runs the packages a and a.b first; those implicit edges count, except to
    the importing module's own packages, which are already being imported (a package's
    registry may import its members, and they the package's other modules).
    """
    tree = ast.parse(path.read_text())
    out: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            base = node.module
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.add(sub if sub in MODULES else base)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    me = _module_name(path).split(".")
    own = {".".join(me[:i]) for i in range(1, len(me) + 1)}
    closure = set()
    for name in out:
        parts = name.split(".")
        closure.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return {m for m in closure if m in MODULES and (m not in own or m in out)}


def _cycle() -> list[str] | None:
    graph = {m: _imports(p) - {m} for m, p in MODULES.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return [*stack[stack.index(n) :], n]
            if n not in state and (found := visit(n)):
                return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_no_import_cycle():
    assert _cycle() is None, " -> ".join(_cycle() or [])


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_size(name):
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines (at most {MAX_LINES}: split it)"


def _aggregate_key(node: ast.Constant, parents: dict) -> bool:
    """``agg["bootstrap"]``: the aggregate's bootstrap resample count, not the generator."""
    parent = parents.get(node)
    if not isinstance(parent, ast.Subscript) or parent.slice is not node:
        return False
    owner = ast.unparse(parent.value)
    return owner == "agg" or owner.endswith('["aggregate"]')


def test_generator_names_are_written_only_in_their_own_module():
    """Code picks generators by capability: a registered name appears as a string literal only
    in that generator's module (and tests). Adding a generator then touches nothing else."""
    from ganplify.generators import REGISTRY

    home = {name: Path(inspect.getfile(type(gen))).resolve() for name, gen in REGISTRY.items()}
    found = []
    for path in MODULES.values():
        tree = ast.parse(path.read_text())
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and node.value in home
                and home[node.value] != path.resolve()
                and not _aggregate_key(node, parents)
            ):
                found.append(f"{path.relative_to(SRC.parent)}:{node.lineno}: {node.value!r}")
    workflow = SRC.parents[1] / "workflow"
    for path in [*workflow.rglob("*.smk"), SRC.parents[1] / "Snakefile"]:
        for no, line in enumerate(path.read_text().splitlines(), 1):
            for name in home:
                if f'"{name}"' in line or f"'{name}'" in line:
                    found.append(f"{path.name}:{no}: {name!r}")
    assert not found, "generator names written outside their modules:\n" + "\n".join(found)
