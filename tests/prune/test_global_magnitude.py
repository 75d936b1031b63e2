"""Global magnitude pruning with a per-layer minimum (methods.md §4): comparable scores, floors, budget."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

from edgeprune.errors import EdgepruneError
from edgeprune.prune import Budget, PruneContext, prune_model
from edgeprune.prune.criteria import create_criterion
from edgeprune.prune.graph import build_graph, protected_modules, prunable_groups
from edgeprune.prune.types import PruneSettings

WIDTH = 48


def _cbr(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]


def _collapsing_net() -> nn.Sequential:
    """stem -> A -> B -> C -> D -> head. Every weight that goes with A's channels (A's filters and B's input
    slices) is 1000x smaller than the rest, so one global threshold takes all of A first. BN after B keeps
    the network's function intact."""
    torch.manual_seed(0)
    net = nn.Sequential(*_cbr(3, 8), *_cbr(8, WIDTH), *_cbr(WIDTH, WIDTH), *_cbr(WIDTH, WIDTH), *_cbr(WIDTH, WIDTH),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(WIDTH, 3)).eval()
    with torch.no_grad():
        net[3].weight.mul_(1e-3)  # A's filters
        net[6].weight.mul_(1e-3)  # B reads A's channels
    return net


def _prune(min_keep_abs: float) -> dict[str, tuple[int, int]]:
    x = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    # engine floors off (1 channel, no ratio): only the criterion's minimum can hold a layer up
    settings = PruneSettings(min_channels=1, min_keep_ratio=0.0)
    crit = create_criterion("global-magnitude", min_keep_abs=min_keep_abs)
    ctx = PruneContext(example_input=x, log=lambda _: None)
    result = prune_model(_collapsing_net(), crit, Budget("flops", 0.4), ctx, settings)
    assert abs(result.achieved_reduction - 0.4) <= 0.02, "the global budget is met"
    out = result.model(x)
    assert torch.isfinite(out).all()
    return result.widths


def test_single_layer_would_collapse_without_the_minimum() -> None:
    # Contrast: torch-pruning's max_pruning_ratio does not help here. It is checked only between steps, so a
    # single global step cut a 16-channel group with 15 tiny channels to 1 channel (methods.md §4, [V-run]).
    # The engine's own floor is switched off in _prune, so layer A collapses to one channel ...
    assert _prune(0.0)["3"][1] == 1
    # ... while min_keep_abs = 5 % of the 4 x 48 = 192 prunable channels keeps ceil(9.6) = 10 of them.
    widths = _prune(0.05)
    assert widths["3"][1] == math.ceil(0.05 * 4 * WIDTH)
    assert all(after >= math.ceil(0.05 * 4 * WIDTH) for _, after in widths.values())


def test_floor_hook_and_prepare_raise_the_engine_floor() -> None:
    net = _collapsing_net()
    x = torch.randn(1, 3, 16, 16)
    groups = prunable_groups(net, build_graph(net, x), protected_modules(net, True, True), 2, 0.0)
    crit = create_criterion("global-magnitude", min_keep_abs=0.1)
    assert crit.floor(groups[0]) == 2, "before prepare: the engine's floor"
    crit.prepare(net, groups, PruneContext(example_input=x, log=lambda _: None))
    total = sum(g.channels for g in groups)
    assert all(g.floor == math.ceil(0.1 * total) == crit.floor(g) for g in groups)


def test_scores_are_mean_abs_weight_of_everything_removed_with_the_channel() -> None:
    net = _collapsing_net()
    x = torch.randn(1, 3, 16, 16)
    groups = prunable_groups(net, build_graph(net, x), protected_modules(net, True, True), 1, 0.0)
    a = next(g for g in groups if g.root_name == "3")
    scores = create_criterion("global-magnitude")(a.group)
    filters = net[3].weight.detach().abs().flatten(1)  # (48, 8*9)
    readers = net[6].weight.detach().abs().transpose(0, 1).flatten(1)  # (48, 48*9)
    expected = (filters.sum(1) + readers.sum(1)) / (filters.shape[1] + readers.shape[1])
    assert torch.allclose(scores, expected, rtol=1e-5)
    # comparable across groups: A's channels are all below every channel of the normal layers
    c = next(g for g in groups if g.root_name == "9")
    assert scores.max() < create_criterion("global-magnitude")(c.group).min()


def test_min_keep_abs_is_validated() -> None:
    with pytest.raises(EdgepruneError, match="min_keep_abs"):
        create_criterion("global-magnitude", min_keep_abs=1.5)
