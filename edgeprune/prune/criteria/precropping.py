"""Width selection at initialization (PreCropping-style), methods.md §2 (Cai et al., arXiv 2203.02549).

The trained model's weights are not used: a fresh model of the same architecture gets per-layer densities
from a pruning-at-init score (SynFlow by default, data-free), the width solver turns them into one width per
dependency group meeting the budget, the fresh model is cropped to those widths, and the pipeline trains it
from scratch (``recovery="train-from-scratch"``). Its real advantage is the training cost, reported next to
its accuracy. The density→width rule is methods.md's recommendation, not the (unavailable) paper's.

``keep_rule`` picks WHICH channels survive the crop. At initialisation channels are exchangeable, so it only
matters for reproducibility: "first" keeps channels 0..k-1 of every group; "l1-init" keeps the k with the
largest L1 norm of their freshly drawn weights over the whole group (a marginal, weights-only preference).
"""

from __future__ import annotations

import copy
import math
import time
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import torch
import torch.nn as nn
import torch_pruning as tp
from pydantic import BaseModel, ConfigDict, Field

from edgeprune.errors import EdgepruneError
from edgeprune.prune.budget import count
from edgeprune.prune.cost import CostModel
from edgeprune.prune.criteria import CRITERIA
from edgeprune.prune.criteria.base import Criterion, PruneContext
from edgeprune.prune.graph import ChannelGroup, build_graph, protected_modules, prunable_groups
from edgeprune.prune.pai import layer_densities
from edgeprune.prune.width_solver import fit_log_ratios, link_layers, meet_budget, realised_densities

if TYPE_CHECKING:
    from edgeprune.prune.budget import Budget
    from edgeprune.prune.engine import PruneResult, PruneSettings

LABEL = "width selection at initialization (PreCropping-style)"
NO_FREE_PRUNE = (
    "methods.md §2.3 'No Free Prune' (arXiv 2402.01089): widths chosen at initialisation carry almost no "
    "information about the data, so expect a larger accuracy gap to train-then-prune at equal size; compare "
    "against the uniform-width and prune-after-training baselines"
)
SOLVER_TOLERANCE = 0.01  # the width solver aims at ±1 % of the dense count (the budget may allow more)


class PreCroppingOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    density_source: Literal["synflow", "snip", "uniform", "erk"] = "synflow"
    keep_rule: Literal["first", "l1-init"] = "first"
    seed: int | None = Field(None, description="initialisation seed; default: the run's seed")
    synflow_rounds: int = Field(100, ge=1, le=1000)
    synflow_max_size: int | None = Field(128, ge=8, description="cap on SynFlow's input side (float64 is slow)")
    reinit: Literal["fan-in", "reset", "none"] = Field(
        "fan-in", description="fan-in: rescale kept weights to the narrower fan-in; reset: each layer's "
        "reset_parameters(); none: keep the cropped fresh weights")
    class_counts: list[int] | None = Field(None, description="training samples per class, for the data warning")
    warn_reduction: float = Field(0.5, gt=0, le=1)
    warn_min_per_class: int = Field(100, ge=0)
    warn_imbalance: float = Field(3.0, ge=1)


def training_cost(dense_macs: int, cropped_macs: int, samples: int | None = None) -> dict[str, Any]:
    """Training compute of the cropped net vs. the dense one on the same schedule (MACs × samples).

    One training sample costs about 3× the forward MACs (forward + backward). Train-then-prune methods
    also need the dense training first, which PreCropping skips entirely.
    """
    ratio = cropped_macs / max(dense_macs, 1)
    out: dict[str, Any] = {
        "basis": "3 x forward MACs per training sample (forward + backward), same schedule for both",
        "dense_macs_per_sample": 3 * dense_macs,
        "cropped_macs_per_sample": 3 * cropped_macs,
        "ratio": round(ratio, 4),
        "saved_fraction": round(1 - ratio, 4),
        "dense_training_needed": False,
    }
    if samples is not None:
        out.update(samples=samples, dense_total_macs=3 * dense_macs * samples,
                   cropped_total_macs=3 * cropped_macs * samples)
    return out


def data_warnings(labels: torch.Tensor | None, class_counts: list[int] | None, min_per_class: int,
                  imbalance: float) -> list[str]:
    """Small/imbalanced-data warnings from given class counts, else from the calibration labels."""
    if class_counts:
        counts, source = [int(c) for c in class_counts], "training set"
    elif labels is not None and labels.numel():
        counts, source = [int(c) for c in torch.bincount(labels.long().flatten()) if c > 0], "calibration sample"
    else:
        return []
    out = []
    if source == "training set" and min(counts) < min_per_class:
        out.append(f"small data: the rarest class has {min(counts)} training samples (< {min_per_class})")
    if min(counts) > 0 and max(counts) / min(counts) >= imbalance:
        out.append(f"imbalanced data: class counts in the {source} range {min(counts)}..{max(counts)} "
                   f"({max(counts) / min(counts):.1f}x)")
    return out


@CRITERIA.register("precropping")
class PreCropping(Criterion):
    name = "precropping"
    summary = f"{LABEL}: PAI layer densities -> one width per group, cropped fresh model trained from scratch"
    paper = "https://arxiv.org/abs/2203.02549"
    needs_training = True  # the cropped model is trained from scratch; SynFlow needs no data, SNIP one batch
    Options: ClassVar[type[BaseModel]] = PreCroppingOptions
    options: PreCroppingOptions

    def __call__(self, group: tp.Group) -> torch.Tensor | None:
        raise RuntimeError("precropping is a whole procedure: call prune_model (it uses run())")

    # -- pieces ------------------------------------------------------------------------------------
    def _fresh_model(self, model: nn.Module, ctx: PruneContext, seed: int, notes: list[str]) -> nn.Module:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            if ctx.model_factory is not None:
                return ctx.model_factory().eval()
            fresh = copy.deepcopy(model).cpu()
            for m in fresh.modules():
                if hasattr(m, "reset_parameters"):
                    m.reset_parameters()
                if hasattr(m, "reset_running_stats"):
                    m.reset_running_stats()
        notes.append("no model factory given: re-initialised a copy with PyTorch's default layer init")
        return fresh.eval()

    def _keep_scores(self, groups: list[ChannelGroup]) -> dict[str, torch.Tensor]:
        if self.options.keep_rule == "first":
            return {g.root_name: torch.arange(g.channels, 0, -1, dtype=torch.float32) for g in groups}
        l1 = tp.importance.GroupMagnitudeImportance(p=1, group_reduction="mean", normalizer=None)
        return {g.root_name: l1(g.group).detach().float().cpu() for g in groups}

    def _reinit(self, fresh: nn.Module, cropped: nn.Module) -> None:
        mode = self.options.reinit
        before = dict(fresh.named_modules())
        with torch.no_grad():
            for name, m in cropped.named_modules():
                if mode == "reset" and hasattr(m, "reset_parameters"):
                    m.reset_parameters()
                elif mode == "fan-in" and isinstance(m, (nn.Conv2d, nn.Linear)):
                    old, new = before[name].weight[0].numel(), m.weight[0].numel()
                    if new != old:
                        m.weight.mul_(math.sqrt(old / new))

    # -- the procedure -----------------------------------------------------------------------------
    def run(self, model: nn.Module, ctx: PruneContext, budget: Budget, settings: PruneSettings) -> PruneResult:
        from edgeprune.prune.engine import PruneResult, evaluate_plan, plan_from_keep

        start, o = time.perf_counter(), self.options
        notes: list[str] = []
        seed = ctx.seed if o.seed is None else o.seed
        x = ctx.example_input
        ctx.log(f"{self.name}: {LABEL}; layer densities from {o.density_source}")
        fresh = self._fresh_model(model, ctx, seed, notes)
        dense_macs, dense_params = count(fresh, x)
        density = 1.0 - budget.reduction  # global weight density of the PAI mask; the solver fixes the budget
        batch = ctx.calib_batches[0] if ctx.calib_batches else None
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            densities = layer_densities(fresh, o.density_source, density, example_input=x, batch=batch,
                                        loss_fn=ctx.loss_fn, synflow_rounds=o.synflow_rounds,
                                        synflow_max_size=o.synflow_max_size)
        groups = prunable_groups(fresh, build_graph(fresh, x),
                                 protected_modules(fresh, settings.protect_stem, settings.protect_classifier),
                                 settings.min_channels, settings.min_keep_ratio)
        if not groups:
            raise EdgepruneError("no layer of this model can be cropped", "check protected layers and floors")
        flops = budget.kind == "flops"
        links = link_layers(fresh, groups, x, "macs" if flops else "params")
        log_ratios = fit_log_ratios(links, densities, groups)
        cost, index = CostModel(fresh, x), 0 if flops else 1
        dense = dense_macs if flops else dense_params
        target = dense * (1.0 - budget.reduction)
        scores = self._keep_scores(groups)

        def estimate(keep: dict[str, int]) -> float:
            return cost.estimate(groups, keep)[index]

        goal, tol = target, min(SOLVER_TOLERANCE, budget.tolerance) * dense
        for _ in range(4):  # the cost model is calibrated, not exact: correct the goal by the real count
            keep, shift, ratios = meet_budget(groups, log_ratios, estimate, goal, tol / 2, settings.round_to)
            plan = plan_from_keep(fresh, groups, scores, keep)
            cropped, macs, params = evaluate_plan(fresh, plan, x)
            value = macs if flops else params
            if abs(value - target) <= tol:
                break
            goal = target * estimate(keep) / max(value, 1)
        err = abs(value - target) / dense
        if err > budget.tolerance:
            raise EdgepruneError(
                f"cannot reach {budget.describe()} within ±{budget.tolerance:.0%} by cropping widths: the closest "
                f"is {1 - value / dense:.1%}", "lower the reduction, lower --min-channels/--round-to")
        if err > SOLVER_TOLERANCE:
            notes.append(f"budget met within {err:.1%} only (whole channels, round_to and floors)")
        self._reinit(fresh, cropped)

        warnings = self._warnings(ctx, budget, 1 - params / dense_params)
        notes.append(f"{LABEL}: widths chosen on a freshly initialised model and trained from scratch; "
                     "the trained model's weights are not used")
        if warnings:
            message = f"WARNING: {'; '.join(warnings)}. {NO_FREE_PRUNE}"
            ctx.log(f"{self.name}: {message}")
            notes.append(message)
        realised = realised_densities(links, keep, groups)
        extra = {
            "label": LABEL,
            "density_source": o.density_source,
            "pai_global_density": round(density, 4),
            "keep_rule": o.keep_rule,
            "reinit": o.reinit,
            "layer_densities": {n: round(d, 4) for n, d in densities.items()},
            "realised_densities": {n: round(d, 4) for n, d in realised.items()},
            "group_keep": {g.root_name: {"channels": g.channels, "keep": keep[g.root_name],
                                         "fitted_ratio": round(math.exp(log_ratios[g.root_name]), 4),
                                         "budget_ratio": round(ratios[g.root_name], 4)} for g in groups},
            "width_shift": round(shift, 4),
            "training_cost": training_cost(dense_macs, macs),
            "warnings": warnings,
        }
        return PruneResult(
            model=cropped.eval(), plan=plan, criterion=self.name, budget=budget, dense_macs=dense_macs,
            dense_params=dense_params, macs=macs, params=params,
            level=1 - sum(keep.values()) / sum(g.channels for g in groups), seconds=time.perf_counter() - start,
            widths=plan.widths(), notes=notes, recovery="train-from-scratch", extra=extra,
        )

    def _warnings(self, ctx: PruneContext, budget: Budget, params_removed: float) -> list[str]:
        o = self.options
        out = []
        if max(budget.reduction, params_removed) >= o.warn_reduction:
            out.append(f"high compression ({budget.describe()}, {params_removed:.0%} of parameters removed)")
        labels = torch.cat([y.flatten() for _, y in ctx.calib_batches]) if ctx.calib_batches else None
        out += data_warnings(labels, o.class_counts, o.warn_min_per_class, o.warn_imbalance)
        return out
