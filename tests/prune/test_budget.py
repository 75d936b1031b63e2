"""The one budget rule: exactly one of flops/params reduction, in (0, 1); used by config, CLI and bake-off."""

from __future__ import annotations

import subprocess
import sys

import pytest

from edgeprune.budget import Budget, budget_kind
from edgeprune.cli._options import overrides
from edgeprune.config import load_config
from edgeprune.errors import EdgepruneError


def test_from_options_picks_the_one_budget_asked_for() -> None:
    assert Budget.from_options(0.4, None) == Budget("flops", 0.4)
    assert Budget.from_options(0.0, 0.3, tolerance=0.05) == Budget("params", 0.3, 0.05)
    assert Budget.from_options(None, None) is None and Budget.from_options(0.0, 0.0) is None
    assert budget_kind(None, 0.2) == "params" and budget_kind(0.2, None) == "flops"


@pytest.mark.parametrize(("flops", "params", "match"), [
    (0.4, 0.3, "not both"), (1.0, None, r"in \(0, 1\)"), (None, 1.5, r"--params-reduction"), (-0.1, None, "0, 1"),
])
def test_bad_budgets_are_one_line_errors_naming_the_fix(flops: float | None, params: float | None, match: str) -> None:
    with pytest.raises(EdgepruneError, match=match) as info:
        Budget.from_options(flops, params)
    assert info.value.fix and "\n" not in str(info.value)


def test_options_are_the_inverse_of_from_options() -> None:
    for budget in (Budget("flops", 0.45), Budget("params", 0.2)):
        options = budget.options()
        assert Budget.from_options(options["flops_reduction"], options["params_reduction"]) == budget
    assert Budget("flops", 0.5).at(0.2) == Budget("flops", 0.2)
    assert Budget("params", 0.5).measure(100, 7) == 7 and Budget("flops", 0.5).measure(100, 7) == 100


def test_config_and_flags_follow_the_same_rule() -> None:
    cfg = load_config(None, overrides(params_reduction=0.3))  # a params flag replaces the default flops budget
    assert Budget.from_options(cfg.prune.flops_reduction, cfg.prune.params_reduction) == Budget("params", 0.3)
    with pytest.raises(EdgepruneError, match="not both"):
        load_config(None, {"prune.flops_reduction": 0.4, "prune.params_reduction": 0.3})
    with pytest.raises(EdgepruneError, match="params reduction"):
        overrides(params_reduction=1.5)


def test_the_budget_module_imports_without_torch() -> None:
    code = "import sys, edgeprune.budget, edgeprune.prune; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
