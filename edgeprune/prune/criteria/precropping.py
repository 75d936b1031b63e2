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
from typing import Any, ClassVar, Literal

import torch
import torch.nn as nn
import torch_pruning as tp
from pydantic import BaseModel, ConfigDict, Field

from edgeprune.budget import Budget, count
from edgeprune.prune.cost import CostModel
from edgeprune.prune.criteria.registry import CRITERIA
from edgeprune.prune.criterion import Procedure
from edgeprune.prune.fit import fit_to_budget, setup_groups
from edgeprune.prune.graph import ChannelGroup
from edgeprune.prune.pai import layer_densities
from edgeprune.prune.types import PruneContext, PruneResult, PruneSettings
from edgeprune.prune.width_solver import fit_log_ratios, link_layers, meet_budget, realised_densities

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
class PreCropping(Procedure):
    name = "precropping"
    summary = f"{LABEL}: PAI layer densities -> one width per group, cropped fresh model trained from scratch"
    paper = "https://arxiv.org/abs/2203.02549"
    retrains_from_scratch = True  # SynFlow needs no data, SNIP one calibration batch
    Options: ClassVar[type[BaseModel]] = PreCroppingOptions
    options: PreCroppingOptions

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
        start, o = time.perf_counter(), self.options
        notes: list[str] = []
        seed = ctx.seed if o.seed is None else o.seed
        x = ctx.example_input
        ctx.log(f"{self.name}: {LABEL}; layer densities from {o.density_source}")
        fresh = self._fresh_model(model, ctx, seed, notes)
        dense = count(fresh, x)
        density = 1.0 - budget.reduction  # global weight density of the PAI mask; the solver fixes the budget
        batch = ctx.calib_batches[0] if ctx.calib_batches else None
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            densities = layer_densities(fresh, o.density_source, density, example_input=x, batch=batch,
                                        loss_fn=ctx.loss_fn, synflow_rounds=o.synflow_rounds,
                                        synflow_max_size=o.synflow_max_size)
        groups = setup_groups(fresh, x, settings)
        links = link_layers(fresh, groups, x, "macs" if budget.kind == "flops" else "params")
        log_ratios = fit_log_ratios(links, densities, groups)
        cost = CostModel(fresh, x)
        aim = min(SOLVER_TOLERANCE, budget.tolerance)
        solved: dict[str, Any] = {}

        def estimate(keep: dict[str, int]) -> float:
            return budget.measure(*cost.estimate(groups, keep))

        def choose(goal: float) -> dict[str, int]:
            keep, solved["shift"], solved["ratios"] = meet_budget(
                groups, log_ratios, estimate, goal, aim * budget.measure(*dense) / 2, settings.round_to)
            return keep

        fit = fit_to_budget(fresh, groups, self._keep_scores(groups), budget, dense, x, choose, estimate, aim,
                            how=" by cropping widths")
        if fit.error > SOLVER_TOLERANCE:
            notes.append(f"budget met within {fit.error:.1%} only (whole channels, round_to and floors)")
        self._reinit(fresh, fit.model)

        warnings = self._warnings(ctx, budget, 1 - fit.params / dense[1])
        notes.append(f"{LABEL}: widths chosen on a freshly initialised model and trained from scratch; "
                     "the trained model's weights are not used")
        if warnings:
            message = f"WARNING: {'; '.join(warnings)}. {NO_FREE_PRUNE}"
            ctx.log(f"{self.name}: {message}")
            notes.append(message)
        keep, ratios = fit.keep, solved["ratios"]
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
            "width_shift": round(solved["shift"], 4),
            "training_cost": training_cost(dense[0], fit.macs),
            "warnings": warnings,
        }
        level = 1 - sum(keep.values()) / sum(g.channels for g in groups)
        return self.result(fit, budget, dense, level, start, notes, extra)

    def _warnings(self, ctx: PruneContext, budget: Budget, params_removed: float) -> list[str]:
        o = self.options
        out = []
        if max(budget.reduction, params_removed) >= o.warn_reduction:
            out.append(f"high compression ({budget.describe()}, {params_removed:.0%} of parameters removed)")
        labels = torch.cat([y.flatten() for _, y in ctx.calib_batches]) if ctx.calib_batches else None
        out += data_warnings(labels, o.class_counts, o.warn_min_per_class, o.warn_imbalance)
        return out
