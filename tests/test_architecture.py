"""The shape of the code base: no import circles, light package imports, public names that
resolve. The import graph counts every import a module makes, at module level or inside a
function, except those under ``if TYPE_CHECKING:``; a package's ``__init__`` counts as the
package."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("envs", "agents", "optimizers", "federation", "edge_bridge", "fmus")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, module: str, is_package: bool, known: set[str]) -> set[str]:
    found: set[str] = set()

    def resolve(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = resolve(alias.name)
                if target:
                    found.add(target)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module if is_package else module.rpartition(".")[0]
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                prefix = f"{base}.{node.module}" if node.module else base
            else:
                prefix = node.module or ""
            for alias in node.names:
                target = resolve(f"{prefix}.{alias.name}") or resolve(prefix)
                if target:
                    found.add(target)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    found.discard(module)
    return found


def import_graph() -> dict[str, set[str]]:
    """Module → the project modules it imports."""
    files = {
        _module_name(path): path
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if "__pycache__" not in path.parts
    }
    known = set(files)
    return {
        name: _imports(ast.parse(path.read_text()), name, path.name == "__init__.py", known)
        for name, path in files.items()
    }


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    sys.setrecursionlimit(10_000)
    for node in sorted(graph):
        if node not in index:
            connect(node)
    return groups


def test_there_are_no_import_circles():
    # A package's lazy ``__getattr__`` exports name their modules as strings, so re-exporting
    # adds no edge; an eager ``from envs.fmu.unit import FmuUnit`` in ``envs/fmu/__init__`` does.
    cycles = find_cycles(import_graph())
    assert cycles == [], "import circles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_the_cycle_finder_finds_a_circle():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_importing_the_packages_stays_light():
    code = (
        "import sys, envs, agents, optimizers, fmus, federation\n"
        "heavy = [m for m in ('torch', 'stable_baselines3', 'pymoo', 'fmpy', 'optuna') "
        "if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


@pytest.mark.parametrize("package", ["envs", "agents", "optimizers", "federation"])
def test_every_exported_name_resolves(package):
    module = __import__(package)
    for name in module.__all__:
        assert getattr(module, name) is not None, f"{package}.{name}"


def _architecture_paths() -> set[str]:
    import re

    text = (ROOT / "ARCHITECTURE.md").read_text()
    return set(
        re.findall(r"`((?:envs|agents|optimizers|federation|edge_bridge|fmus)/[\w/]*\.py)`", text)
    )


def test_the_architecture_document_names_every_module():
    named = _architecture_paths()
    modules = {
        str(path.relative_to(ROOT))
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if "__pycache__" not in path.parts and path.name != "__init__.py"
    }
    missing = sorted(modules - named)
    assert missing == [], f"ARCHITECTURE.md does not describe: {missing}"


def test_every_path_the_architecture_document_names_exists():
    gone = sorted(path for path in _architecture_paths() if not (ROOT / path).exists())
    assert gone == [], f"ARCHITECTURE.md names files that do not exist: {gone}"
