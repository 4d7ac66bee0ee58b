"""The package's shape (docs/architecture.md §1): layers point one way, no import cycles, pure layers stay pure.

The import graph is read from the source with ``ast``, so imports inside functions and under
``TYPE_CHECKING`` count: a cycle hidden in a function body is still a cycle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "mia_kd"

# Which top-level parts of mia_kd each part may import (besides itself). From the top: CLI and API → sweep →
# trial → shadows → {prepared, validate} → distill → privacy → models → {attacks, data} → {metrics, objectives, store,
# config}; analysis → {store, metrics, objectives, attacks}. Attacks are pure functions of per-token statistics: the ensemble's
# analysis re-runs them on mixture statistics read from the store, so analysis may import them.
BOTTOM = {"errors", "registry"}
PURE = BOTTOM | {"metrics", "objectives", "store", "config"}
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "registry": {"errors"},
    "metrics": {"errors"},
    "objectives": {"errors"},
    "store": {"errors", "metrics", "objectives"},
    "config": {"errors"},
    "data": PURE,
    "attacks": PURE,
    "models": PURE | {"attacks", "data"},
    "privacy": PURE | {"attacks", "data", "models"},
    "distill": PURE | {"attacks", "data", "models", "privacy"},
    "validate": PURE | {"attacks", "data", "models", "privacy", "distill"},
    "prepared": PURE | {"attacks", "data", "models", "privacy", "distill"},
    "shadows": PURE | {"attacks", "data", "models", "privacy", "distill", "validate", "prepared"},
    "trial": PURE | {"attacks", "data", "models", "privacy", "distill", "validate", "prepared", "shadows"},
    "analysis": PURE | {"attacks"},
    "sweep": PURE | {"attacks", "data", "models", "privacy", "distill", "validate", "prepared", "shadows", "trial",
                     "analysis"},
}
TOP = {"cli", "api", "__init__", "__main__"}  # the entry points: may import anything


def _modules() -> dict[str, Path]:
    modules = {}
    for path in ROOT.rglob("*.py"):
        parts = ["mia_kd", *path.relative_to(ROOT).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def import_graph() -> dict[str, set[str]]:
    """``module -> the mia_kd modules it imports``, every import statement anywhere in the file."""
    modules = _modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    source = ".".join([*base, node.module] if node.module else base)
                else:
                    source = node.module or ""
                # `from a.b import c` imports the module a.b.c where there is one, else names of a.b.
                targets = [f"{source}.{a.name}" if f"{source}.{a.name}" in modules else source for a in node.names]
            else:
                continue
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target.startswith("mia_kd") and target != name:
                    graph[name].add(target)
    return graph


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_import_graph_sees_function_local_imports():
    graph = import_graph()
    # mia_kd/__init__.py imports its public names lazily, inside __getattr__: the graph must still see it.
    assert any(target.startswith("mia_kd.") for target in graph["mia_kd"])


def test_no_import_cycles_including_function_local_imports():
    assert _cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_layers_point_one_way():
    wrong = []
    for module, targets in import_graph().items():
        part = _part(module)
        if part in TOP:
            continue
        assert part in ALLOWED, f"{module}: the part {part!r} has no place in the layer map of this test"
        wrong += [f"{module} -> {t}" for t in sorted(targets) if _part(t) != part and _part(t) not in ALLOWED[part]]
    assert wrong == []


def test_no_module_is_over_400_lines():
    long = {str(p.relative_to(ROOT)): n for p in ROOT.rglob("*.py") if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}


def test_the_recipe_and_the_runner_stay_small():
    assert len((ROOT / "trial.py").read_text().splitlines()) <= 250
    runner = (ROOT / "sweep" / "runner.py").read_text()
    assert len(runner.splitlines()) <= 200
    assert not any(t.startswith("ray") for t in _external_imports(ROOT / "sweep" / "runner.py"))


def _external_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names.add(node.module or "")
    return names


def test_only_the_ray_boundary_imports_ray():
    importers = sorted(
        str(p.relative_to(ROOT)) for p in ROOT.rglob("*.py")
        if any(n == "ray" or n.startswith("ray.") for n in _external_imports(p))
    )
    assert importers == ["sweep/shadow_tasks.py", "sweep/tracking.py", "sweep/tune.py"]


@pytest.mark.parametrize("modules", ["mia_kd.config, mia_kd.metrics, mia_kd.analysis.frontier", "mia_kd.objectives, mia_kd.store"])
def test_pure_layers_import_neither_torch_nor_ray(modules):
    code = f"import sys, {modules}; heavy = sorted({{m.split('.')[0] for m in sys.modules}} & {{'torch', 'ray'}}); print(heavy)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
