"""MaskSparsity: the masked BN-γ regulariser, shared masks on residual streams, the |γ| check, budgets."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from edgeprune.errors import EdgepruneError
from edgeprune.models import create_model
from edgeprune.prune import Budget, PruneContext, prune_model
from edgeprune.prune.criteria import CRITERIA, create_criterion
from edgeprune.prune.graph import build_graph, protected_modules, prunable_groups
from edgeprune.prune.sparsity import BNScaleRegulariser, LastState
from edgeprune.train.loop import TrainResult


def _tiny_train_fn(size: int, steps_per_epoch: int = 12, lr0: float = 0.2, calls: list | None = None):
    """SGD on random tensors, lr decaying to ~0 each call, calling the after_backward hooks like the real loop."""

    def train_fn(model: nn.Module, epochs: int, after_backward=None, lr=None, teacher=None) -> TrainResult:
        if calls is not None:
            calls.append({"epochs": epochs, "lr": lr, "hooks": len(after_backward or [])})
        gen = torch.Generator().manual_seed(0)
        opt = torch.optim.SGD(model.parameters(), lr=lr0)
        total = max(1, epochs * steps_per_epoch)
        model.train()
        for step in range(total):
            x = torch.randn(4, 3, size, size, generator=gen)
            y = torch.randint(0, 3, (4,), generator=gen)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            for hook in after_backward or []:
                hook(model)
            for group in opt.param_groups:
                group["lr"] = lr0 * (1 - step / total) ** 2
            opt.step()
        return TrainResult(model=model, history=[{"epoch": e + 1} for e in range(epochs)], best_epoch=epochs)

    return train_fn


def _ctx(size: int, train_fn=None) -> PruneContext:
    gen = torch.Generator().manual_seed(1)
    calib = [(torch.randn(4, 3, size, size, generator=gen), torch.tensor([0, 1, 2, 0]))]
    logs: list[str] = []
    ctx = PruneContext(example_input=calib[0][0][:1], calib_batches=calib, train_fn=train_fn, log=logs.append)
    ctx.logs = logs  # type: ignore[attr-defined]
    return ctx


def _trained_like(name: str) -> nn.Module:
    torch.manual_seed(0)
    model = create_model(name, num_classes=3)
    with torch.no_grad():  # BN scales as after training, with both signs
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.3, 1.2).mul_(torch.where(torch.rand(m.num_features) < 0.2, -1.0, 1.0))
    return model.eval()


def _groups(model: nn.Module, x: torch.Tensor):
    return prunable_groups(model, build_graph(model, x), protected_modules(model, True, True), 2, 0.1)


def test_only_masked_gammas_receive_lambda_sign_gamma() -> None:
    model = _trained_like("resnet20")
    x = torch.randn(2, 3, 32, 32)
    groups = _groups(model, x[:1])
    drop = {g.root_name: list(range(0, g.channels, 3)) for g in groups[::2]}
    lam = 0.37
    reg = BNScaleRegulariser.from_groups(model, groups, drop, lam)
    model.train()
    (model(x) * 0.0).sum().backward()  # every gradient exists and is exactly zero
    reg(model)
    pushed = 0
    for name, m in model.named_modules():
        if not isinstance(m, nn.BatchNorm2d):
            continue
        mask = reg.masks[name]
        expected = lam * torch.sign(m.weight.detach()) * mask
        assert torch.equal(m.weight.grad, expected), name
        assert torch.count_nonzero(m.bias.grad) == 0
        pushed += int(mask.sum())
    assert pushed > 0
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert all(torch.count_nonzero(c.weight.grad) == 0 for c in convs)


def test_coupled_bns_of_a_residual_stream_share_the_mask() -> None:
    model = _trained_like("resnet20")
    x = torch.randn(1, 3, 32, 32)
    groups = _groups(model, x)
    stream = next(g for g in groups if g.root_name == "layer2.0.shortcut.0")
    inner = next(g for g in groups if g.root_name == "layer2.1.conv1")
    drop = {stream.root_name: [1, 4, 5, 30], inner.root_name: [0, 2]}
    reg = BNScaleRegulariser.from_groups(model, groups, drop, 1e-3)
    stream_bns = ["layer2.0.bn2", "layer2.1.bn2", "layer2.2.bn2", "layer2.0.shortcut.1"]
    for name in stream_bns:  # the add keeps channel order, so root index == local index on every member
        assert torch.nonzero(reg.masks[name]).flatten().tolist() == [1, 4, 5, 30], name
    assert torch.nonzero(reg.masks["layer2.1.bn1"]).flatten().tolist() == [0, 2]
    untouched = [n for n in reg.masks if n not in stream_bns + ["layer2.1.bn1"]]
    assert untouched and all(reg.masks[n].sum() == 0 for n in untouched)
    # Network Slimming's global version covers every BN
    everywhere = BNScaleRegulariser.everywhere(model, 1e-3)
    assert set(everywhere.masks) == {n for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)}
    assert all(bool(m.all()) for m in everywhere.masks.values())


def test_sparse_training_collapses_the_masked_gammas_and_prunes_exactly_them() -> None:
    model = _trained_like("test_resblock")
    calls: list = []
    ctx = _ctx(16, _tiny_train_fn(16, calls=calls))
    budget = Budget("flops", 0.4)
    crit = create_criterion("masksparsity", lam=1.0, lr=0.05, sparse_epochs=6)
    result = prune_model(model, crit, budget, ctx)
    stats = result.extra["gamma_stats"]
    assert stats["converged"] and stats["pruned_above_threshold"] == 0
    assert stats["after"]["masked"]["max_abs"] <= 0.01 < stats["before"]["masked"]["max_abs"]
    assert stats["after"]["unmasked"]["mean_abs"] > 0.1  # the kept channels were not shrunk
    assert not any("WARNING" in n for n in result.notes)
    assert result.recovery == "finetune" and result.extra["mask_source"] == "l1"
    assert abs(result.achieved_reduction - 0.4) <= budget.tolerance
    # one epoch per call with the regulariser (+ the last-weights keeper), stopping once the masked γ collapsed
    assert 1 < len(calls) < 6 and all(c == {"epochs": 1, "lr": 0.05, "hooks": 2} for c in calls)
    assert result.extra["sparse_epochs"] == len(calls)
    # exactly the channels the l1 mask chose were removed
    reference = prune_model(model, create_criterion("l1"), budget, _ctx(16))
    assert result.plan.widths() == reference.plan.widths()
    assert {e.root: e.keep for e in result.plan.steps[0]} == {e.root: e.keep for e in reference.plan.steps[0]}
    assert torch.isfinite(result.model(torch.randn(2, 3, 16, 16))).all()


def test_warns_when_lambda_is_too_small_to_collapse_the_masked_gammas() -> None:
    ctx = _ctx(16, _tiny_train_fn(16, steps_per_epoch=2))
    result = prune_model(_trained_like("test_resblock"), create_criterion("masksparsity", lam=1e-6, sparse_epochs=1),
                         Budget("flops", 0.4), ctx)
    stats = result.extra["gamma_stats"]
    assert not stats["converged"] and stats["pruned_above_threshold"] > 0
    assert any("did not converge" in n for n in result.notes)
    assert any("did not converge" in line for line in ctx.logs)  # type: ignore[attr-defined]


def test_bn_sparse_mask_on_resnet20_meets_the_budget() -> None:
    ctx = _ctx(32, _tiny_train_fn(32, steps_per_epoch=1))
    crit = create_criterion("masksparsity", mask_source="bn-sparse", lam=0.5, sparse_epochs=1,
                            mask_epochs=1)
    result = prune_model(_trained_like("resnet20"), crit, Budget("flops", 0.5), ctx)
    assert abs(result.achieved_reduction - 0.5) <= 0.02
    assert result.extra["mask_source"] == "bn-sparse" and result.summary()["gamma_stats"]["after"]["masked"]["channels"]
    out = result.model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 3) and torch.isfinite(out).all()


def test_last_state_undoes_a_best_epoch_restore() -> None:
    model = nn.Linear(2, 2)
    last = LastState()
    with torch.no_grad():
        model.weight.fill_(1.0)
    last(model)
    with torch.no_grad():
        model.weight.fill_(5.0)  # what a best-epoch restore would put back
    assert not last.restore(model, TrainResult(model=model, history=[{}, {}], best_epoch=2))
    assert float(model.weight.detach()[0, 0]) == 5.0
    assert last.restore(model, TrainResult(model=model, history=[{}, {}], best_epoch=1))
    assert float(model.weight.detach()[0, 0]) == 1.0


def test_needs_a_training_function_and_a_ranking_mask_source() -> None:
    assert CRITERIA.get("masksparsity").capabilities()["needs_training"]
    model = _trained_like("test_tinycnn")
    with pytest.raises(EdgepruneError, match="training"):
        prune_model(model, create_criterion("masksparsity"), Budget("flops", 0.3), _ctx(16))
    for bad in ("precropping", "masksparsity"):
        with pytest.raises(EdgepruneError, match="mask_source"):
            prune_model(model, create_criterion("masksparsity", mask_source=bad), Budget("flops", 0.3),
                        _ctx(16, _tiny_train_fn(16)))
    with pytest.raises(EdgepruneError, match="did you mean"):
        prune_model(model, create_criterion("masksparsity", mask_source="l11"), Budget("flops", 0.3),
                    _ctx(16, _tiny_train_fn(16)))
    with pytest.raises(EdgepruneError, match="lam"):
        create_criterion("masksparsity", lam=-1.0)
