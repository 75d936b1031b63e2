"""Every score-based criterion of the registry on the zoo: scores, determinism, budgets, a runnable result."""

from __future__ import annotations

import dataclasses
import functools

import pytest
import torch
import torch.nn as nn

from edgeprune.errors import EdgepruneError
from edgeprune.models import MODELS, create_model
from edgeprune.prune import Budget, PruneContext, prune_model
from edgeprune.prune.criteria import CRITERIA, create_criterion
from edgeprune.prune.criterion import Scorer
from edgeprune.prune.graph import ChannelGroup, build_graph, channel_floor, protected_modules, prunable_groups

# criteria that score channels (whole procedures such as pruning at initialisation are Procedures)
SCORED = [n for n, cls in CRITERIA.items() if issubclass(cls, Scorer)]
MINE = ["l2", "bn-scale", "taylor", "fpgm", "random", "global-magnitude", "beta-rank"]
MODELS_UNDER_TEST = ["test_tinycnn", "test_resblock", "test_dwsep", "resnet20", "mobilenetv2"]
NUM_CLASSES = 3


def _size(name: str) -> int:
    return 16 if MODELS.get(name).test_only else 32


def _context(name: str, seed: int = 0) -> PruneContext:
    size = _size(name)
    gen = torch.Generator().manual_seed(seed)
    calib = [(torch.randn(4, 3, size, size, generator=gen), torch.randint(0, NUM_CLASSES, (4,), generator=gen))
             for _ in range(2)]
    return PruneContext(example_input=calib[0][0][:1], calib_batches=calib, seed=seed, log=lambda _: None)


@functools.cache
def _model_and_groups(name: str) -> tuple[nn.Module, list[ChannelGroup]]:
    torch.manual_seed(0)
    model = create_model(name, num_classes=NUM_CLASSES).eval()
    with torch.no_grad():  # BN as after training (fresh BNs all have gamma = 1, which bn-scale cannot rank)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.1)
    graph = build_graph(model, _context(name).example_input)
    return model, prunable_groups(model, graph, protected_modules(model, True, True), 4, 0.1)


def _scores(criterion_name: str, model_name: str, seed: int = 0) -> dict[str, torch.Tensor | None]:
    model, groups = _model_and_groups(model_name)
    groups = [dataclasses.replace(g) for g in groups]  # prepare() may raise floors: keep the cache clean
    criterion = create_criterion(criterion_name)
    criterion.prepare(model, groups, _context(model_name, seed))
    return {g.root_name: criterion(g.group) for g in groups}


def test_registry_lists_every_criterion_with_its_needs() -> None:
    assert set(MINE) <= set(SCORED)
    caps = {n: CRITERIA.get(n).capabilities() for n in MINE}
    assert caps["beta-rank"]["needs_data"] and not caps["beta-rank"]["needs_grad"]
    assert caps["taylor"]["needs_data"] and caps["taylor"]["needs_grad"]
    assert caps["global-magnitude"]["scope"] == "global"
    assert not any(caps[n]["needs_data"] for n in ("l2", "bn-scale", "fpgm", "random", "global-magnitude"))
    assert "beta_mode" in caps["beta-rank"]["options"]


@pytest.mark.parametrize("model_name", MODELS_UNDER_TEST)
@pytest.mark.parametrize("criterion_name", SCORED)
def test_scores_have_root_length_are_finite_and_deterministic(criterion_name: str, model_name: str) -> None:
    first = _scores(criterion_name, model_name)
    again = _scores(criterion_name, model_name)
    _, groups = _model_and_groups(model_name)
    scored = 0
    for g in groups:
        s = first[g.root_name]
        if s is None:
            continue
        scored += 1
        assert s.shape == (g.channels,), (g.root_name, s.shape)
        assert torch.isfinite(s).all(), g.root_name
        assert torch.equal(s, again[g.root_name]), f"{g.root_name}: not deterministic"
    assert scored == len(groups), "every zoo group has a conv and a BN, so every group is scored"
    # a real criterion tells channels apart
    assert any(float(first[g.root_name].std()) > 0 for g in groups)  # type: ignore[union-attr]


def test_random_follows_the_seed() -> None:
    a, b, c = (_scores("random", "resnet20", seed) for seed in (0, 0, 1))
    assert all(torch.equal(a[k], b[k]) for k in a)  # type: ignore[arg-type]
    assert not all(torch.equal(a[k], c[k]) for k in a)  # type: ignore[arg-type]
    assert torch.equal(create_criterion("random", seed=5)(_model_and_groups("resnet20")[1][0].group),
                       create_criterion("random", seed=5)(_model_and_groups("resnet20")[1][0].group))


@pytest.mark.parametrize("model_name", MODELS_UNDER_TEST)
@pytest.mark.parametrize("criterion_name", MINE)
def test_prunes_to_flops_target_and_runs(criterion_name: str, model_name: str) -> None:
    torch.manual_seed(0)
    model = create_model(model_name, num_classes=NUM_CLASSES).eval()
    ctx = _context(model_name)
    target = 0.2 if model_name == "test_dwsep" else 0.4  # the dw-separable toy cannot lose more
    result = prune_model(model, create_criterion(criterion_name), Budget("flops", target), ctx)
    achieved = result.achieved_reduction
    assert abs(achieved - target) <= 0.02, f"{criterion_name}/{model_name}: {achieved:.3f}"
    out = result.model(ctx.calib_batches[1][0][:2])
    assert out.shape == (2, NUM_CLASSES) and torch.isfinite(out).all()
    for root, (before, after) in result.widths.items():
        assert after >= channel_floor(before, 4, 0.1), root


def test_efficientnet_smoke() -> None:
    model = create_model("efficientnet_lite0", num_classes=NUM_CLASSES).eval()
    ctx = _context("efficientnet_lite0")
    result = prune_model(model, create_criterion("beta-rank"), Budget("flops", 0.3), ctx)
    assert abs(result.achieved_reduction - 0.3) <= 0.02
    assert torch.isfinite(result.model(ctx.calib_batches[0][0][:2])).all()


def test_bn_scale_falls_back_to_l1_without_batchnorm() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2)).eval()
    x = torch.randn(1, 3, 8, 8)
    groups = prunable_groups(model, build_graph(model, x), protected_modules(model, True, True), 1, 0.0)
    notes: list[str] = []
    crit = create_criterion("bn-scale")
    crit.prepare(model, groups, PruneContext(example_input=x, log=notes.append))
    assert notes and "L1" in notes[0]
    scores = crit(groups[0].group)
    l1 = create_criterion("l1")(groups[0].group)
    assert torch.equal(torch.argsort(scores), torch.argsort(l1))


def test_taylor_sums_every_removed_parameter_including_batchnorm() -> None:
    model, groups = _model_and_groups("test_tinycnn")
    ctx = _context("test_tinycnn")
    every, one_batch = create_criterion("taylor"), create_criterion("taylor", max_batches=1)
    every.prepare(model, groups, ctx)
    one_batch.prepare(model, groups, ctx)
    assert all(p.grad is None for p in model.parameters()), "gradients are cleared after prepare"
    group = next(g for g in groups if g.root_name == "features.1.0")
    conv, bn, reader = model.features[1][0], model.features[1][1], model.features[2][0]
    acc = every._acc
    assert acc is not None
    expected = (acc[id(conv.weight)].flatten(1).sum(1) + acc[id(bn.weight)] + acc[id(bn.bias)]
                + acc[id(reader.weight)].transpose(0, 1).flatten(1).sum(1))
    assert float(acc[id(bn.weight)].sum()) > 0, "BN gamma receives Taylor terms"
    assert torch.allclose(every(group.group), expected.float(), rtol=1e-5)
    assert not torch.allclose(every(group.group), one_batch(group.group)), "every batch counts"


def test_fpgm_sums_distances_between_signed_filters() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 6, 3), nn.ReLU(), nn.Conv2d(6, 2, 1),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 2)).eval()
    with torch.no_grad():
        model[2].weight[1] = -model[2].weight[0]  # same |w| as filter 0, far from it
    x = torch.randn(1, 3, 8, 8)
    group = next(g for g in prunable_groups(model, build_graph(model, x), protected_modules(model, True, True), 1, 0.0)
                 if g.root_name == "2")
    parts = []
    for w in (model[2].weight.detach().flatten(1), model[4].weight.detach().transpose(0, 1).flatten(1)):
        d = torch.stack([(w - w[i]).norm(dim=1).sum() for i in range(len(w))])
        parts.append(d / d.mean())
    scores = create_criterion("fpgm")(group.group)
    assert torch.allclose(scores, (parts[0] + parts[1]) / 2, rtol=1e-5)


def test_criteria_that_need_data_say_so() -> None:
    model, groups = _model_and_groups("test_tinycnn")
    for name in ("taylor", "beta-rank"):
        with pytest.raises(EdgepruneError, match="calibration"):
            create_criterion(name).prepare(model, groups, PruneContext(example_input=torch.randn(1, 3, 16, 16)))
    with pytest.raises(EdgepruneError, match="beta_mode"):
        create_criterion("beta-rank", beta_mode="other")
