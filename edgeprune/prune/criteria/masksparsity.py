"""MaskSparsity (Jiang et al., arXiv 2201.06776), methods.md §3: sparse training on the to-be-pruned channels only.

1. Mask: the channels to prune at the budget. ``mask_source`` is any registered criterion (the engine's own
   budget search on a copy; the plan's dropped channels per group root), or "bn-sparse": a short global
   Network-Slimming training (λ·sign(γ) on every BN scale) on a copy, then |γ| ranked globally at the budget.
2. Train the (dense) model with λ·sign(γ) added to the gradient of the masked BN scales only (one mask per
   dependency group, shared by every BN coupled in a residual stream), via the pipeline's training function.
3. Prune exactly the masked channels and check each pruned |γ| fell to ≤ ``threshold``; warn if not. The
   pipeline then fine-tunes (``recovery="finetune"``).

Schedule and defaults for small data [my choices; methods.md has no CIFAR/medical values]: the paper's
λ = 5e-4 goes with 100 ImageNet epochs of SGD at lr 0.1. Here the masked phase runs one epoch per
``train_fn`` call (a cosine cycle each) and stops as soon as every masked |γ| ≤ ``threshold``, up to
``sparse_epochs``. Once λ dominates a masked channel's loss gradient, AdamW moves γ by about lr per step
whatever λ is (measured on RetinaMNIST/ResNet-20: mean masked |γ| fell by 0.67 = Σ lr over 136 steps), while
SGD moves it by lr·λ. Trained γ are ≈ 1, so collapsing them needs Σ lr ≳ 1.2: hence lam = 1e-2, lr = 2e-2
and up to 20 epochs (measured: 9 epochs on RetinaMNIST's 1080 images at batch 64, AdamW, masked mean
|γ| 1.0 -> 0.001, unmasked 0.93). With SGD raise lam to ~1.
Not done: folding the constant ReLU(β) of pruned channels into the next layer (§3.6 step 5); it is exact
only away from zero-padded borders and not at all across residual adds, and fine-tuning absorbs it.
"""

from __future__ import annotations

import copy
import time
from typing import Any, ClassVar

import torch
import torch.nn as nn
import torch_pruning as tp
from pydantic import BaseModel, ConfigDict, Field

from edgeprune.budget import Budget, count
from edgeprune.errors import EdgepruneError
from edgeprune.prune.criteria.registry import CRITERIA, create_criterion
from edgeprune.prune.criterion import Procedure, Scorer, scatter_to_root
from edgeprune.prune.engine import prune_model
from edgeprune.prune.fit import Fit, evaluate_plan, setup_groups
from edgeprune.prune.plan import PruningPlan
from edgeprune.prune.sparsity import BNScaleRegulariser, LastState
from edgeprune.prune.types import PruneContext, PruneResult, PruneSettings

_BN = nn.modules.batchnorm._BatchNorm


class MaskSparsityOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mask_source: str = Field("l1", description="'bn-sparse' or any registered criterion name")
    mask_options: dict[str, Any] = Field(default_factory=dict, description="options of the mask criterion")
    lam: float = Field(1e-2, gt=0, description="λ of the masked L1 term on γ")
    global_lam: float | None = Field(None, gt=0, description="λ of the bn-sparse mask phase (default: lam)")
    threshold: float = Field(0.01, gt=0, description="pruned channels should end with |γ| <= threshold")
    sparse_epochs: int = Field(20, ge=1, description="most epochs of masked sparse training")
    early_stop: bool = Field(True, description="stop once every masked |γ| <= threshold")
    mask_epochs: int = Field(4, ge=1, description="epochs of the global bn-sparse phase (mask_source=bn-sparse)")
    lr: float | None = Field(2e-2, gt=0, description="learning rate of the sparse phases (None: the fine-tune lr)")


class _GammaMagnitude(Scorer):
    """|γ| of every BN in the group, averaged in root-index space; groups without BN are not scored."""

    name = "bn-gamma"
    summary = "mean |γ| over the coupled BNs (after global sparse training)"
    scope = "global"

    def __call__(self, group: tp.Group) -> torch.Tensor | None:
        per_layer = []
        for item in group:
            mod = item.dep.target.module
            if isinstance(mod, _BN) and mod.weight is not None:
                per_layer.append((mod.weight.detach().abs()[list(item.idxs)], list(item.root_idxs)))
        if not per_layer:
            return None
        return scatter_to_root(group, per_layer, len(group[0].idxs)) / len(per_layer)


def _train(ctx: PruneContext, model: nn.Module, epochs: int, hooks: list[Any], lr: float | None) -> nn.Module:
    last = LastState()
    result = ctx.train_fn(model, epochs, after_backward=[*hooks, last], lr=lr)  # type: ignore[misc]
    trained = getattr(result, "model", None)
    trained = trained if isinstance(trained, nn.Module) else model
    if last.restore(trained, result):
        ctx.log("  sparse phase: kept the last weights, not the best-validation epoch")
    return trained


@CRITERIA.register("masksparsity")
class MaskSparsity(Procedure):
    name = "masksparsity"
    summary = "mask (criterion or BN-γ sparse training) -> L1 on the masked BN scales only -> prune them"
    paper = "https://arxiv.org/abs/2201.06776"
    needs_data = True
    needs_training = True
    Options: ClassVar[type[BaseModel]] = MaskSparsityOptions
    options: MaskSparsityOptions

    def _mask(self, model: nn.Module, ctx: PruneContext, budget: Budget, settings: PruneSettings) -> PruningPlan:
        """The plan pruning the mask's channels at the budget (a one-shot pruning by the mask source)."""
        o = self.options
        if o.mask_source == "bn-sparse":
            sparse = copy.deepcopy(model)
            reg = BNScaleRegulariser.everywhere(sparse, o.global_lam or o.lam)
            ctx.log(f"{self.name}: global BN-γ sparse training for the mask ({o.mask_epochs} epochs, λ={reg.lam:g})")
            source, scorer = _train(ctx, sparse, o.mask_epochs, [reg], o.lr), _GammaMagnitude()
        else:
            scorer, source = create_criterion(o.mask_source, **o.mask_options), model
            if not isinstance(scorer, Scorer):
                raise EdgepruneError(f"mask_source '{o.mask_source}' is a whole procedure, not a channel ranking",
                                     "use 'bn-sparse' or a scoring criterion such as l1")
        return prune_model(source, scorer, budget, ctx, settings).plan

    def run(self, model: nn.Module, ctx: PruneContext, budget: Budget, settings: PruneSettings) -> PruneResult:
        if ctx.train_fn is None:
            raise EdgepruneError("masksparsity needs a training phase but no training function was given",
                                 "run it through the edgeprune pipeline (build/compare) or set PruneContext.train_fn")
        start, o = time.perf_counter(), self.options
        notes: list[str] = []
        x = ctx.example_input
        work = copy.deepcopy(model)
        dense = count(work, x)
        plan = self._mask(work, ctx, budget, settings)
        drop = {e.root: sorted(set(range(e.channels)) - set(e.keep)) for step in plan.steps for e in step}
        groups = [g for g in setup_groups(work, x, settings) if drop.get(g.root_name)]
        reg = BNScaleRegulariser.from_groups(work, groups, drop, o.lam)
        before = reg.stats(work, o.threshold)
        ctx.log(f"{self.name}: mask from {o.mask_source}: {before['masked'].get('channels', 0)} BN channels to push "
                f"to zero; masked sparse training, up to {o.sparse_epochs} epochs (λ={o.lam:g}, lr={o.lr})")
        epochs = 0
        while epochs < o.sparse_epochs:
            work = _train(ctx, work, 1, [reg], o.lr)
            epochs += 1
            masked, _ = reg.masked_gammas(work)
            done = not masked.numel() or float(masked.max()) <= o.threshold
            ctx.log(f"  sparse epoch {epochs}: masked mean |γ| {float(masked.mean()) if masked.numel() else 0:.4f}, "
                    f"{float((masked <= o.threshold).float().mean()) if masked.numel() else 1:.0%} <= {o.threshold:g}")
            if done and o.early_stop:
                break
        work = work.eval()
        after = reg.stats(work, o.threshold)
        m, u = after["masked"], after["unmasked"]
        ctx.log(f"{self.name}: mean |γ| masked {m.get('mean_abs', 0):.4f} vs unmasked {u.get('mean_abs', 0):.4f}; "
                f"{m.get('fraction_below_threshold', 1):.0%} of masked channels at |γ| <= {o.threshold:g}")

        pruned, macs, params = evaluate_plan(work, plan, x)  # exactly the masked channels
        fit = Fit({e.root: len(e.keep) for step in plan.steps for e in step}, plan, pruned, macs, params)
        masked, _ = reg.masked_gammas(work)
        bad = int((masked > o.threshold).sum())
        if bad:
            message = (f"WARNING: {bad} of {masked.numel()} pruned BN channels still had |γ| > {o.threshold:g} "
                       f"(max {float(masked.max()):.4f}): the masked regularisation did not converge, so pruning "
                       "removed live channels; raise lam, sparse_epochs or lr")
            ctx.log(f"{self.name}: {message}")
            notes.append(message)
        no_bn = [g.root_name for g in groups if not any(isinstance(i.dep.target.module, _BN) for i in g.group)]
        if no_bn:
            notes.append(f"groups without a BN scale were pruned by the mask alone: {', '.join(no_bn)}")
        extra = {
            "mask_source": o.mask_source,
            "lam": o.lam,
            "threshold": o.threshold,
            "sparse_epochs": epochs,
            "gamma_stats": {"before": before, "after": after, "pruned_above_threshold": bad,
                            "converged": bad == 0},
            "mask": {root: len(idx) for root, idx in sorted(drop.items())},
        }
        level = sum(len(v) for v in drop.values()) / max(1, sum(g.channels for g in groups))
        return self.result(fit, budget, dense, level, start, notes, extra)
