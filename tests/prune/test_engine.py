"""Budget-driven pruning over every zoo model, plan persistence and floors."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn

from edgeprune.budget import count
from edgeprune.errors import EdgepruneError
from edgeprune.models import MODELS, create_model
from edgeprune.prune import Budget, PruneContext, apply_plan, prune_model
from edgeprune.prune.criteria import create_criterion
from edgeprune.prune.graph import build_graph, protected_modules, prunable_groups, round_keep
from edgeprune.prune.types import PruneSettings

ZOO = [n for n in MODELS.names() if n != "efficientnet_lite0" and not MODELS.get(n).test_only]


def _example(size: int = 32) -> torch.Tensor:
    return torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("name", [*ZOO, "efficientnet_lite0"])
def test_each_zoo_model_meets_flops_target_and_runs(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, num_classes=5).eval()
    x = _example()
    dense_macs, _ = count(model, x)
    result = prune_model(model, create_criterion("l1"), Budget("flops", 0.5), PruneContext(example_input=x))
    achieved = 1 - result.macs / dense_macs
    assert abs(achieved - 0.5) <= 0.02, f"{name}: {achieved:.3f}"
    out = result.model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 5) and torch.isfinite(out).all()
    # the dense model is untouched and the pruned one really has fewer parameters
    assert count(model, x)[0] == dense_macs
    assert result.params < result.dense_params


@pytest.mark.parametrize("name", ["resnet20", "mobilenetv2"])
def test_params_budget(name: str) -> None:
    model = create_model(name, num_classes=3).eval()
    x = _example()
    result = prune_model(model, create_criterion("l1"), Budget("params", 0.4), PruneContext(example_input=x))
    assert abs(result.achieved_reduction - 0.4) <= 0.02


def test_plan_round_trip_gives_identical_outputs(tmp_path) -> None:
    from edgeprune.pipeline.checkpoints import load_checkpoint, save_checkpoint

    torch.manual_seed(1)
    model = create_model("resnet20", num_classes=4).eval()
    x = _example()
    result = prune_model(model, create_criterion("l1"), Budget("flops", 0.45), PruneContext(example_input=x))
    path = tmp_path / "pruned.pt"
    save_checkpoint(path, result.model, result.plan)
    torch.manual_seed(123)  # a different init: everything must come from the checkpoint
    rebuilt, plan = load_checkpoint(path, create_model("resnet20", num_classes=4), x)
    probe = torch.randn(3, 3, 32, 32)
    assert plan == result.plan
    assert torch.equal(rebuilt(probe), result.model(probe))
    # the checkpoint holds tensors and plain data only
    torch.load(path, weights_only=True)


def test_plan_on_wrong_model_is_a_clear_error() -> None:
    x = _example()
    result = prune_model(create_model("resnet20", num_classes=4).eval(), create_criterion("l1"),
                         Budget("flops", 0.3), PruneContext(example_input=x))
    with pytest.raises(EdgepruneError, match="plan"):
        apply_plan(create_model("vgg11_bn", num_classes=4).eval(), result.plan, x)


def test_floor_is_respected_and_stem_classifier_protected() -> None:
    model = create_model("resnet20", num_classes=5).eval()
    x = _example()
    settings = PruneSettings(min_channels=6, min_keep_ratio=0.25)
    result = prune_model(model, create_criterion("l1"), Budget("flops", 0.6), PruneContext(example_input=x), settings)
    for root, (before, after) in result.widths.items():
        assert after >= max(6, int(0.25 * before + 0.999)), root
    stem = [m for m in result.model.modules() if isinstance(m, nn.Conv2d)][0]
    assert stem.out_channels == [m for m in model.modules() if isinstance(m, nn.Conv2d)][0].out_channels
    assert result.model.classifier.out_features == 5


def test_round_to_keeps_multiples() -> None:
    model = create_model("vgg11_bn", num_classes=5).eval()
    x = _example()
    result = prune_model(model, create_criterion("l1"), Budget("flops", 0.5, tolerance=0.05),
                         PruneContext(example_input=x), PruneSettings(round_to=8))
    for root, (before, after) in result.widths.items():
        assert after % 8 == 0 or after == before, (root, after)
    assert round_keep(13, 64, 4, 8) == 16 and round_keep(3, 6, 2, 8) == 3


def test_unreachable_budget_says_how_far_it_can_go() -> None:
    model = create_model("test_tinycnn", num_classes=3).eval()
    x = _example(16)
    with pytest.raises(EdgepruneError, match="at most"):
        prune_model(model, create_criterion("l1"), Budget("flops", 0.97), PruneContext(example_input=x),
                    PruneSettings(min_channels=8))


def test_groups_couple_residual_stream() -> None:
    model = copy.deepcopy(create_model("resnet20", num_classes=5).eval())
    graph = build_graph(model, _example())
    groups = prunable_groups(model, graph, protected_modules(model, True, True), 4, 0.1)
    # stage 1's residual stream contains the stem: protected, so it is not among the prunable groups
    assert all(len(g.group[0].idxs) == g.channels for g in groups)
    assert any(len(g.member_names(model)) > 3 for g in groups), "a residual stream couples several layers"


def test_unknown_criterion_suggests() -> None:
    with pytest.raises(EdgepruneError, match="did you mean 'l1'"):
        create_criterion("l11")
