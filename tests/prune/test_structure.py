"""Scorers and procedures apart, and one direction of imports inside edgeprune.prune."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from edgeprune.errors import EdgepruneError
from edgeprune.models import create_model
from edgeprune.prune import Budget, PruneContext, prune_model
from edgeprune.prune.criteria import CRITERIA, create_criterion
from edgeprune.prune.criterion import Procedure, Scorer
from edgeprune.prune.engine import prune_gradually
from edgeprune.prune.types import PruneSettings
from edgeprune.train.loop import TrainResult

PRUNE = Path(__file__).resolve().parents[2] / "edgeprune" / "prune"


def test_every_criterion_is_exactly_one_kind_and_declares_its_needs() -> None:
    for name, cls in CRITERIA.items():
        assert issubclass(cls, Scorer) != issubclass(cls, Procedure), name
        caps = cls.capabilities()
        assert caps["kind"] == ("scorer" if issubclass(cls, Scorer) else "procedure"), name
        assert set(caps["needs"]) <= {"data", "grad", "training", "training from scratch"}
    assert {n for n, c in CRITERIA.items() if issubclass(c, Procedure)} == {"masksparsity", "precropping"}
    assert CRITERIA.get("precropping").capabilities()["needs"] == ["training from scratch"]
    assert CRITERIA.get("masksparsity").capabilities()["needs"] == ["data", "training"]
    assert CRITERIA.get("taylor").capabilities()["needs"] == ["data", "grad"]


def _module(path: Path) -> str:
    parts = path.relative_to(PRUNE.parents[1]).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every edgeprune.prune module ``path`` imports, at any depth (TYPE_CHECKING and function bodies too)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("edgeprune.prune"):
            for alias in node.names:  # "from pkg import module" imports the module
                sub = f"{node.module}.{alias.name}"
                out.add(sub if (PRUNE.parents[1] / (sub.replace(".", "/") + ".py")).is_file() else node.module)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("edgeprune.prune")}
    return out


def test_prune_modules_import_each_other_in_one_direction() -> None:
    """Apart from the registry's own import list (a package importing its members), no import circle."""
    graph = {}
    for path in PRUNE.rglob("*.py"):
        name = _module(path)
        members = {f"{name}.{p.stem}" for p in path.parent.glob("*.py")} if path.name == "__init__.py" else set()
        graph[name] = _imports(path) - members - {name}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        if state.get(node) == 2:
            return
        if state.get(node) == 1:
            pytest.fail("import circle: " + " -> ".join(trail[trail.index(node):] + [node]))
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            visit(dep, trail + [node])
        state[node] = 2

    for node in sorted(graph):
        visit(node, [])
    assert "edgeprune.prune.criterion" in graph["edgeprune.prune.engine"]


def test_scorer_plans_name_the_coupled_layers() -> None:
    x = torch.randn(1, 3, 16, 16)
    result = prune_model(create_model("test_resblock", num_classes=3).eval(), create_criterion("l1"),
                         Budget("flops", 0.4), PruneContext(example_input=x))
    entries = result.plan.steps[0]
    assert entries and all(e.root in e.members for e in entries)
    assert any(len(e.members) > 3 for e in entries), "the residual stream's layers are listed"


def test_gradual_pruning_trains_between_steps_and_meets_the_budget() -> None:
    torch.manual_seed(0)
    dense = create_model("test_resblock", num_classes=3).eval()
    calls: list[tuple[int, bool]] = []

    def train_fn(model: torch.nn.Module, epochs: int, after_backward=None, lr=None, teacher=None) -> TrainResult:
        calls.append((epochs, teacher is dense))
        return TrainResult(model=model, history=[{}], best_epoch=1)

    ctx = PruneContext(example_input=torch.randn(1, 3, 16, 16), train_fn=train_fn, log=lambda _: None)
    result = prune_gradually(dense, lambda: create_criterion("l1"), Budget("flops", 0.4), ctx, PruneSettings(),
                             steps=3, epochs_between=2)
    assert len(result.plan.steps) == 3 and calls == [(2, True), (2, True)]
    assert abs(result.achieved_reduction - 0.4) <= 0.02
    assert result.widths == result.plan.widths() and any(b > a for b, a in result.widths.values())
    with pytest.raises(EdgepruneError, match="iterative-steps"):
        prune_gradually(dense, lambda: create_criterion("precropping"), Budget("flops", 0.4), ctx, PruneSettings(),
                        steps=2, epochs_between=1)


def test_list_criteria_shows_each_kind_and_its_needs() -> None:
    from typer.testing import CliRunner

    from edgeprune.cli import app

    res = CliRunner().invoke(app, ["list", "criteria"], env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    rows = {line.split("│")[1].strip(): line for line in res.output.splitlines() if line.count("│") > 5}
    assert set(CRITERIA.names()) <= set(rows)
    assert "procedure" in rows["precropping"] and "training from scratch" in rows["precropping"]
    assert "procedure" in rows["masksparsity"] and "data, training" in rows["masksparsity"]
    assert "scorer" in rows["taylor"] and "data, grad" in rows["taylor"]
