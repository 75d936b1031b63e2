"""PreCropping (width selection at initialization): PAI densities, the width solver, cropping, warnings."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

from edgeprune.budget import count
from edgeprune.errors import EdgepruneError
from edgeprune.models import create_model
from edgeprune.prune import Budget, PruneContext, prune_model
from edgeprune.prune.criteria import CRITERIA, create_criterion
from edgeprune.prune.criteria.precropping import LABEL
from edgeprune.prune.graph import build_graph, channel_floor, protected_modules, prunable_groups
from edgeprune.prune.pai import layer_densities, weight_layers
from edgeprune.prune.types import PruneSettings
from edgeprune.prune.width_solver import fit_log_ratios, link_layers, realised_densities


def _ctx(name: str, size: int, labels: list[int] | None = None, **kw) -> PruneContext:
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    calib = []
    if labels is not None:
        y = torch.tensor(labels)
        calib = [(torch.randn(len(labels), 3, size, size, generator=torch.Generator().manual_seed(1)), y)]
    logs: list[str] = []
    ctx = PruneContext(example_input=x, calib_batches=calib, log=logs.append,
                       model_factory=lambda: create_model(name, num_classes=4, **kw), seed=3)
    ctx.logs = logs  # type: ignore[attr-defined]
    return ctx


def _weighted_density(model: nn.Module, densities: dict[str, float]) -> float:
    layers = weight_layers(model)
    return sum(densities[n] * m.weight.numel() for n, m in layers.items()) / sum(
        m.weight.numel() for m in layers.values())


@pytest.mark.parametrize(("name", "size", "kind"), [("resnet20", 32, "params"), ("resnet20", 32, "flops"),
                                                    ("mobilenetv2", 16, "params"), ("mobilenetv2", 16, "flops")])
def test_one_width_per_group_meets_budget_within_one_percent(name: str, size: int, kind: str) -> None:
    ctx = _ctx(name, size)
    dense = create_model(name, num_classes=4)
    result = prune_model(dense, create_criterion("precropping", density_source="erk"), Budget(kind, 0.45), ctx)
    assert abs(result.achieved_reduction - 0.45) <= 0.01, result.achieved_reduction
    assert result.recovery == "train-from-scratch"
    summary = result.summary()
    assert summary["label"] == LABEL and summary["density_source"] == "erk"
    # every dimension coupled in one dependency group (a whole residual stream) has the group's single width
    fresh = ctx.model_factory()
    groups = prunable_groups(fresh, build_graph(fresh, ctx.example_input), protected_modules(fresh, True, True), 4, 0.1)
    cropped = dict(result.model.named_modules())
    names = {m: n for n, m in fresh.named_modules()}
    stream_sizes = []
    for g in groups:
        keep = summary["group_keep"][g.root_name]["keep"]
        dims = set()
        for item in g.group:
            mod = item.dep.target.module
            if mod not in names:
                continue
            new = cropped[names[mod]]
            out_side = "out" in item.dep.handler.__name__
            if isinstance(new, nn.Conv2d):
                dims.add(new.out_channels if out_side else new.in_channels)
            elif isinstance(new, nn.Linear):
                dims.add(new.out_features if out_side else new.in_features)
            elif isinstance(new, nn.BatchNorm2d):
                dims.add(new.num_features)
        assert dims == {keep}, (g.root_name, dims, keep)
        stream_sizes.append(len(g.member_names(fresh)))
    assert max(stream_sizes) > 4, "a residual stream couples several layers into one group"
    # the real advantage, reported next to accuracy: training compute of the cropped net vs. the dense one
    cost = summary["training_cost"]
    assert cost["ratio"] == pytest.approx(result.macs / result.dense_macs, abs=1e-4) and cost["ratio"] < 1
    assert cost["dense_training_needed"] is False
    assert torch.isfinite(result.model(torch.randn(2, 3, size, size))).all()


def test_floors_and_round_to_hold_under_pressure() -> None:
    settings = PruneSettings(min_channels=6, min_keep_ratio=0.4, round_to=4)
    ctx = _ctx("resnet20", 32)
    result = prune_model(create_model("resnet20", num_classes=4), create_criterion("precropping", density_source="erk"),
                         Budget("params", 0.6), ctx, settings)
    assert abs(result.achieved_reduction - 0.6) <= 0.02
    assert result.widths
    for root, (before, after) in result.widths.items():
        assert after >= channel_floor(before, 6, 0.4), root
        assert after % 4 == 0 or after == before, (root, after)
    with pytest.raises(EdgepruneError, match="cannot reach"):
        prune_model(create_model("resnet20", num_classes=4), create_criterion("precropping", density_source="erk"),
                    Budget("params", 0.9), ctx, settings)


def test_fit_recovers_consistent_densities_exactly() -> None:
    model = create_model("resnet20", num_classes=4)
    x = torch.randn(1, 3, 32, 32)
    groups = prunable_groups(model, build_graph(model, x), protected_modules(model, True, True), 2, 0.05)
    links = link_layers(model, groups, x)
    gen = torch.Generator().manual_seed(0)
    truth = {g.root_name: float(torch.empty(1).uniform_(0.3, 0.95, generator=gen)) for g in groups}
    wanted = {}
    for link in links:
        wanted[link.name] = math.exp(sum(c * math.log(truth[r]) for r, c in link.coefficients().items()))
    fitted = fit_log_ratios(links, wanted, groups)
    for root, value in truth.items():
        assert math.exp(fitted[root]) == pytest.approx(value, rel=1e-5), root


def test_fitted_widths_track_synflow_densities_better_than_a_uniform_width() -> None:
    torch.manual_seed(0)
    model = create_model("resnet20", num_classes=4)
    x = torch.randn(1, 3, 16, 16)
    densities = layer_densities(model, "synflow", 0.4, example_input=x, synflow_rounds=3)
    groups = prunable_groups(model, build_graph(model, x), protected_modules(model, True, True), 1, 0.01)
    links = link_layers(model, groups, x)
    fitted = fit_log_ratios(links, densities, groups)
    free = [link for link in links if link.coefficients()]

    def error(keep_ratio: dict[str, float]) -> float:
        keep = {g.root_name: keep_ratio[g.root_name] * g.channels for g in groups}
        got = realised_densities(free, keep, groups)
        return sum(lk.weight * (math.log(got[lk.name]) - math.log(max(densities[lk.name], 1e-4))) ** 2
                   for lk in free) / sum(lk.weight for lk in free)

    best_uniform = min(error({g.root_name: c / 20 for g in groups}) for c in range(1, 21))
    ours = error({r: math.exp(v) for r, v in fitted.items()})
    assert ours < 0.7 * best_uniform, (ours, best_uniform)
    # where a layer's widths are not pinned at a bound, the realised density follows SynFlow's
    within = [lk for lk in free if all(-4.0 < fitted[r] < -1e-6 for r in lk.coefficients())]
    assert within
    keep = {g.root_name: math.exp(fitted[g.root_name]) * g.channels for g in groups}
    got = realised_densities(within, keep, groups)
    ratios = [got[lk.name] / densities[lk.name] for lk in within if lk.weight > 1000]
    assert ratios and sorted(ratios)[len(ratios) // 2] == pytest.approx(1.0, abs=0.15)


@pytest.mark.parametrize("name", ["test_resblock", "test_dwsep", "mobilenetv2"])
def test_pai_densities_are_finite_deterministic_and_meet_the_global_density(name: str) -> None:
    torch.manual_seed(0)
    kw = {"width_mult": 0.35} if name == "mobilenetv2" else {}
    model = create_model(name, num_classes=3, **kw)
    x = torch.randn(1, 3, 16, 16)
    batch = (torch.randn(6, 3, 16, 16, generator=torch.Generator().manual_seed(2)), torch.tensor([0, 1, 2, 0, 1, 2]))
    for source in ("synflow", "snip", "erk", "uniform"):
        rounds = 2 if name == "mobilenetv2" else 5
        a = layer_densities(model, source, 0.3, example_input=x, batch=batch, synflow_rounds=rounds)
        b = layer_densities(model, source, 0.3, example_input=x, batch=batch, synflow_rounds=rounds)
        assert a == b, source
        assert set(a) == set(weight_layers(model))
        assert all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in a.values()), source
        assert _weighted_density(model, a) == pytest.approx(0.3, abs=0.01), source
        if source == "synflow":  # rectifiers (ReLU6 too) are linearised: no layer's signal is cut off
            assert min(a.values()) > 0.0
    with pytest.raises(EdgepruneError, match="snip"):
        layer_densities(model, "snip", 0.3, example_input=x)


def test_cropped_model_is_fresh_reinitialised_and_reproducible() -> None:
    ctx = _ctx("resnet20", 32)
    trained = create_model("resnet20", num_classes=4)
    with torch.no_grad():
        for p in trained.parameters():
            p.fill_(0.123)  # a "trained" model: none of its weights may reach the cropped one
    budget = Budget("params", 0.5)
    plain = prune_model(trained, create_criterion("precropping", density_source="uniform", reinit="none"), budget, ctx)
    scaled = prune_model(trained, create_criterion("precropping", density_source="uniform"), budget, ctx)
    torch.manual_seed(ctx.seed)
    fresh = ctx.model_factory()
    conv = dict(plain.model.named_modules())["layer2.1.conv1"]
    ref = fresh.layer2[1].conv1.weight
    # keep_rule "first": the first channels of the fresh init survive; fan-in rescale fixes the variance
    assert torch.equal(conv.weight, ref[: conv.out_channels, : conv.in_channels])
    factor = math.sqrt(ref[0].numel() / conv.weight[0].numel())
    assert factor > 1
    torch.testing.assert_close(dict(scaled.model.named_modules())["layer2.1.conv1"].weight, conv.weight * factor)
    assert not any(bool((p == 0.123).all()) for p in scaled.model.parameters())
    # both runs drew the same fresh init from the seed: reproducible
    for (name, a), b in zip(plain.model.named_modules(), scaled.model.modules(), strict=True):
        if isinstance(a, nn.Conv2d):
            torch.testing.assert_close(b.weight, a.weight * math.sqrt(
                dict(fresh.named_modules())[name].weight[0].numel() / a.weight[0].numel()))
    out = scaled.model.train()(torch.randn(4, 3, 32, 32))
    assert out.shape == (4, 4) and torch.isfinite(out).all()


def test_warns_at_high_compression_or_imbalanced_data_citing_no_free_prune() -> None:
    crit = lambda **o: create_criterion("precropping", density_source="uniform", **o)  # noqa: E731
    balanced = [0, 1, 2, 3] * 4
    quiet = _ctx("test_tinycnn", 16, balanced)
    result = prune_model(create_model("test_tinycnn", num_classes=4), crit(), Budget("params", 0.3), quiet)
    assert result.extra["warnings"] == [] and not any("WARNING" in n for n in result.notes)
    imbalanced = _ctx("test_tinycnn", 16, [0] * 12 + [1, 2, 3, 1])
    result = prune_model(create_model("test_tinycnn", num_classes=4), crit(), Budget("params", 0.3), imbalanced)
    assert any("imbalanced" in w for w in result.extra["warnings"])
    assert any("No Free Prune" in line for line in imbalanced.logs)  # type: ignore[attr-defined]
    high = _ctx("test_tinycnn", 16, balanced)
    result = prune_model(create_model("test_tinycnn", num_classes=4), crit(class_counts=[500, 40, 300, 300]),
                         Budget("params", 0.55), high)
    joined = " ".join(result.extra["warnings"])
    assert "high compression" in joined and "small data" in joined
    assert any("No Free Prune" in n for n in result.notes)


def test_registered_with_label_and_rejects_bad_options() -> None:
    assert "precropping" in CRITERIA.names()
    assert "initialization" in CRITERIA.get("precropping").summary
    with pytest.raises(EdgepruneError, match="density_source"):
        create_criterion("precropping", density_source="grasp")
    with pytest.raises(EdgepruneError, match="keep_rule"):
        create_criterion("precropping", keep_rule="middle")


def test_dense_counts_come_from_the_architecture_not_the_given_model() -> None:
    ctx = _ctx("test_tinycnn", 16)
    model = create_model("test_tinycnn", num_classes=4)
    result = prune_model(model, create_criterion("precropping", density_source="uniform"), Budget("flops", 0.3), ctx)
    assert (result.dense_macs, result.dense_params) == count(model, ctx.example_input)
