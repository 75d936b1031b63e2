"""Layers torch-pruning cannot follow (channel shuffle, split, reshape) are left unpruned and named; never a
traceback. A model with nothing prunable stops with one line and exit 2."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from edgeprune.budget import Budget, count
from edgeprune.cli import app
from edgeprune.errors import EdgepruneError
from edgeprune.models import create_model
from edgeprune.prune import PruneContext, prune_model
from edgeprune.prune.criteria import create_criterion
from edgeprune.prune.fit import setup_groups
from edgeprune.prune.plan import apply_plan
from edgeprune.prune.types import PruneSettings

NETS = textwrap.dedent('''
    import torch
    from torch import nn


    def shuffle(x, groups=2):
        n, c, h, w = x.shape
        return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


    class ShuffleOnly(nn.Module):
        """Every prunable layer feeds a channel shuffle (the stem and classifier are protected)."""

        def __init__(self, num_classes=3, in_channels=3):
            super().__init__()
            self.stem = nn.Conv2d(in_channels, 8, 3, padding=1)
            self.a = nn.Conv2d(8, 16, 3, padding=1)
            self.b = nn.Conv2d(16, 16, 3, padding=1)
            self.classifier = nn.Linear(16, num_classes)

        def forward(self, x):
            x = shuffle(torch.relu(self.a(torch.relu(self.stem(x)))))
            x = shuffle(torch.relu(self.b(x)))
            return self.classifier(x.mean((2, 3)))


    class Flipped(nn.Module):
        """Channel order reversed between a and b: torch-pruning takes flip for an elementwise op."""

        def __init__(self, num_classes=3, in_channels=3):
            super().__init__()
            self.stem = nn.Conv2d(in_channels, 8, 3, padding=1)
            self.a = nn.Conv2d(8, 16, 3, padding=1)
            self.b = nn.Conv2d(16, 16, 3, padding=1)
            self.c = nn.Conv2d(16, 16, 3, padding=1)
            self.classifier = nn.Linear(16, num_classes)

        def forward(self, x):
            x = torch.relu(self.a(torch.relu(self.stem(x))))
            x = torch.relu(self.b(x.flip(1)))
            return self.classifier(torch.relu(self.c(x)).mean((2, 3)))
''')


@pytest.fixture(scope="module")
def nets_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("nets") / "odd_nets.py"
    path.write_text(NETS)
    return path


def _load(path: Path, name: str) -> nn.Module:
    namespace: dict[str, object] = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)  # noqa: S102 - the test's own file
    return namespace[name]().eval()  # type: ignore[operator]


def test_shufflenetv2_prunes_what_it_can_and_lists_the_rest() -> None:
    torch.manual_seed(0)
    model = create_model("shufflenetv2", 3).eval()
    x = torch.randn(1, 3, 32, 32)
    logs: list[str] = []
    result = prune_model(model, create_criterion("l1"), Budget("flops", 0.3, tolerance=0.05),
                         PruneContext(example_input=x, log=logs.append))
    summary = result.summary()
    unpruned = {u["layer"]: u["reason"] for u in summary["unpruned"]}
    # every block's output conv feeds the channel shuffle: all of them stay as they are, with the reason
    outputs = {n for n, _ in model.named_modules() if n.endswith("branch2.5")}
    assert outputs <= set(unpruned), outputs - set(unpruned)
    assert all("torch-pruning" in why for why in unpruned.values())
    assert any("channel shuffle" in why for why in unpruned.values())
    assert not set(summary["widths"]) & set(unpruned)
    # ... while the layers inside the branches were pruned, and the budget was met
    assert any(k.endswith("branch2.3") and w["after"] < w["before"] for k, w in summary["widths"].items())
    assert abs(result.achieved_reduction - 0.3) <= 0.05
    assert any("left unpruned" in line for line in logs) and any("net.stage2.1.branch2.5" in line for line in logs)
    # the plan replays on a fresh model (how pruned checkpoints load) and the result runs
    replayed = apply_plan(create_model("shufflenetv2", 3).eval(), result.plan, x)
    assert count(replayed, x) == count(result.model, x)
    assert replayed(torch.randn(2, 3, 32, 32)).shape == (2, 3)


def test_a_permutation_torch_pruning_misses_is_caught_by_the_trial(nets_file: Path) -> None:
    model = _load(nets_file, "Flipped")
    groups = setup_groups(model, torch.randn(1, 3, 16, 16), PruneSettings())
    assert [g.root_name for g in groups] == ["b", "c"]
    assert [u.layer for u in groups.unpruned] == ["a"]
    assert "changes what the remaining channels compute" in groups.unpruned[0].reason


def test_nothing_prunable_is_one_line(nets_file: Path) -> None:
    with pytest.raises(EdgepruneError, match="no layer of this model can be pruned: torch-pruning cannot follow"):
        setup_groups(_load(nets_file, "ShuffleOnly"), torch.randn(1, 3, 16, 16), PruneSettings())


def test_build_of_a_model_with_nothing_prunable_exits_2(nets_file: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["build", "--model", f"{nets_file}:ShuffleOnly", "--data", "embedded",
                                      "--epochs", "1", "--max-train", "32", "--flops-reduction", "0.3",
                                      "--threads", "1", "--out", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "no layer of this model can be pruned" in errors[0]
    assert "Traceback" not in result.output
