"""The import structure of ``edgeprune/``: no circles, and no arrow from a lower layer to a higher one.

The layer order is the one stated in the README's layout section. Every ``import`` counts, including the ones
inside functions (a lazy import hides a circle, it does not remove it); only imports under
``if TYPE_CHECKING:`` are left out, since they never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parents[1] / "edgeprune"

# Lowest first. A module may import from its own layer (when that draws no circle) and from any layer below.
LAYERS: list[tuple[str, ...]] = [
    ("errors", "fsutil", "registry", "optional", "zipsafe"),
    ("schemas", "contract", "metrics", "gate", "profile"),
    ("config", "budget", "data", "models", "train", "artifacts", "rundir"),
    ("prune", "export", "runtimes", "devices"),
    ("preflight", "report", "latency"),
    ("pipeline", "package", "search"),
    ("api", "server"),
    ("cli", "__main__"),
]


def _layer_of(top: str) -> int:
    for index, names in enumerate(LAYERS):
        if top in names:
            return index
    raise AssertionError(f"edgeprune/{top} is in no layer: add it to LAYERS in tests/test_layers.py and the README")


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE_ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and (
        (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
        or (isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING")
    )


def _imports(path: Path, module: str, known: set[str]) -> set[str]:
    """The edgeprune modules that ``module`` imports (resolved to files that exist)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def resolve(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    def visit(node: ast.AST) -> None:
        if _is_type_checking_block(node):
            for child in node.orelse:  # type: ignore[attr-defined]
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("edgeprune"):
                    target = resolve(alias.name)
                    if target:
                        found.add(target)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            if stem.startswith("edgeprune"):
                for alias in node.names:
                    target = resolve(f"{stem}.{alias.name}") or resolve(stem)
                    if target:
                        found.add(target)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    found.discard(module)
    return found


def _graph() -> dict[str, set[str]]:
    files = {(_module_name(p)): p for p in PACKAGE_ROOT.rglob("*.py") if "migrations" not in p.parts}
    known = set(files)
    return {module: _imports(path, module, known) for module, path in files.items()}


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_no_import_from_a_lower_layer_to_a_higher_one() -> None:
    upward = []
    for module, targets in sorted(_graph().items()):
        if module == "edgeprune":  # the package face re-exports the public API from the top layer
            continue
        for target in sorted(targets):
            if target == "edgeprune":
                continue
            if _layer_of(_top(target)) > _layer_of(_top(module)):
                upward.append(f"{module} -> {target}")
    assert not upward, "imports that run up the layers:\n" + "\n".join(upward)


def test_no_import_circles() -> None:
    graph = {m: {t for t in ts if t != "edgeprune"} for m, ts in _graph().items() if m != "edgeprune"}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []
    counter = 0

    def strongconnect(node: str) -> None:  # Tarjan's strongly connected components
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for succ in graph.get(node, ()):
            if succ not in index:
                strongconnect(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            strongconnect(node)
    assert not circles, "import circles:\n" + "\n".join(" <-> ".join(c) for c in circles)


@pytest.mark.parametrize("top", sorted({p.name.removesuffix(".py") for p in PACKAGE_ROOT.iterdir()
                                        if p.name != "__pycache__" and not p.name.startswith(".")} - {"py.typed"}))
def test_every_top_level_module_has_a_layer(top: str) -> None:
    if top == "__init__":
        return
    _layer_of(top)
