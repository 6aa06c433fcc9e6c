"""The layers import one way down, and no module imports itself round a circle.

Every import in every module of the project is read from its source (function-level imports
included, since a lazy import is still a dependency), resolved to the project's module it names,
and checked against the layer order below. A second check looks for cycles in the module graph.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Lower number = lower layer. A module may import its own package's modules and modules of any
# strictly lower layer. Layers of equal rank are siblings that must not import each other.
LAYERS: dict[str, int] = {
    "kernel": 0,  # settings, HTTP helpers, validation errors: imports no layer
    "infra": 0,  # the local stack: processes and files, knows nothing of MovieAugur's code
    "domain": 1,
    "projections": 2,
    "commands": 3,
    "queries": 3,
    "offline": 3,
    "movieaugur.adapters": 4,
    "movieaugur": 5,  # the composition root: bootstrap, app, CLI, operations
    "testing": 6,  # test fakes (a local TMDB)
    "dags": 6,
}
PACKAGES = ("kernel", "infra", "domain", "projections", "commands", "queries", "offline", "movieaugur", "testing", "dags")


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def layer_of(module: str) -> str:
    best = ""
    for layer in LAYERS:
        if (module == layer or module.startswith(layer + ".")) and len(layer) > len(best):
            best = layer
    return best


def _resolve(name: str) -> str | None:
    """The project module an imported name refers to (the longest known prefix), if any."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in MODULES:
            return candidate
        parts.pop()
    return None


def imports_of(module: str) -> Iterator[tuple[int, str]]:
    """(line, imported project module) for every import statement in the module."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # `from pkg import sub` may name a submodule rather than an attribute.
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        for name in names:
            target = _resolve(name)
            if target is not None and target != module:
                yield node.lineno, target
                break


def test_the_walk_sees_every_layer() -> None:
    """Guard against a check that passes because it found nothing to check."""
    assert {layer_of(m) for m in MODULES} >= set(LAYERS) - {"testing"}
    assert sum(1 for m in MODULES for _ in imports_of(m)) > 100


def test_no_import_runs_up_or_sideways() -> None:
    wrong = []
    for module in MODULES:
        own = layer_of(module)
        for line, target in imports_of(module):
            other = layer_of(target)
            if other == own:
                continue
            if LAYERS[other] >= LAYERS[own]:
                wrong.append(f"{MODULES[module].relative_to(REPO)}:{line} ({own}) imports {target} ({other})")
    assert not wrong, "imports against the layer order:\n" + "\n".join(wrong)


def test_no_import_cycle() -> None:
    graph = {module: {target for _, target in imports_of(module)} for module in MODULES}
    cycles = _cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), as example paths."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": {"b"}, "b": {"a"}}, [["a", "b"]]),
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
    ],
)
def test_cycle_finder_finds_a_planted_cycle(graph: dict[str, set[str]], expected: list[list[str]]) -> None:
    assert _cycles(graph) == expected
