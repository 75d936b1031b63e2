"""Score channels, then search the one level that meets the budget, respecting floors and round_to."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn

from edgeprune.errors import EdgepruneError
from edgeprune.prune.budget import Budget, count
from edgeprune.prune.cost import CostModel
from edgeprune.prune.criteria.base import Criterion, PruneContext
from edgeprune.prune.graph import ChannelGroup, build_graph, protected_modules, prunable_groups
from edgeprune.prune.plan import PlanEntry, PruningPlan, apply_plan

__all__ = ["PruneContext", "PruneResult", "PruneSettings", "prune_model", "plan_from_keep", "evaluate_plan"]


@dataclass(frozen=True)
class PruneSettings:
    min_channels: int = 4
    min_keep_ratio: float = 0.1
    round_to: int | None = None
    protect_stem: bool = True
    protect_classifier: bool = True
    search_steps: int = 22


@dataclass
class PruneResult:
    model: nn.Module
    plan: PruningPlan
    criterion: str
    budget: Budget
    dense_macs: int
    dense_params: int
    macs: int
    params: int
    level: float
    seconds: float
    widths: dict[str, tuple[int, int]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # how the next stage recovers accuracy: "finetune" (from these weights, with distillation) or
    # "train-from-scratch" (re-initialised weights, full training schedule: pruning at initialisation)
    recovery: str = "finetune"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def achieved_reduction(self) -> float:
        dense, now = (self.dense_macs, self.macs) if self.budget.kind == "flops" else (self.dense_params, self.params)
        return 1.0 - now / dense

    def summary(self) -> dict[str, Any]:
        return {
            "criterion": self.criterion,
            "budget": {"kind": self.budget.kind, "reduction": self.budget.reduction, "tolerance": self.budget.tolerance},
            "achieved_reduction": round(self.achieved_reduction, 4),
            "macs": {"dense": self.dense_macs, "pruned": self.macs},
            "params": {"dense": self.dense_params, "pruned": self.params},
            "level": round(self.level, 5),
            "seconds": round(self.seconds, 2),
            "widths": {k: {"before": a, "after": b} for k, (a, b) in sorted(self.widths.items())},
            "notes": self.notes,
            "recovery": self.recovery,
            **self.extra,
        }


def round_keep(keep: int, channels: int, floor: int, round_to: int | None) -> int:
    keep = max(floor, min(channels, keep))
    if round_to and channels > round_to:
        keep = max(round_to, int(round(keep / round_to)) * round_to)
        keep = min(channels, keep)
        while keep < floor:
            keep += round_to
        keep = min(channels, keep)
    return keep


def plan_from_keep(model: nn.Module, groups: list[ChannelGroup], scores: dict[str, torch.Tensor],
                   keep: dict[str, int]) -> PruningPlan:
    """Keep the ``keep[root]`` best-scoring channels of each group (ties broken by index)."""
    step = []
    for g in groups:
        k = keep.get(g.root_name, g.channels)
        if k >= g.channels:
            continue
        s = scores[g.root_name]
        order = sorted(range(g.channels), key=lambda i: (-float(s[i]), i))
        step.append(PlanEntry(root=g.root_name, channels=g.channels, keep=sorted(order[:k]),
                              members=g.member_names(model)))
    return PruningPlan(steps=[step])


def evaluate_plan(model: nn.Module, plan: PruningPlan, example_input: torch.Tensor) -> tuple[nn.Module, int, int]:
    pruned = apply_plan(copy.deepcopy(model), plan, example_input)
    macs, params = count(pruned, example_input)
    return pruned, macs, params


def _allocate(groups: list[ChannelGroup], scores: dict[str, torch.Tensor], level: float, scope: str,
              round_to: int | None) -> dict[str, int]:
    if scope == "global":
        pool = torch.cat([scores[g.root_name] for g in groups])
        threshold = torch.quantile(pool.float(), level) if level > 0 else pool.min() - 1
        raw = {g.root_name: int((scores[g.root_name] > threshold).sum()) for g in groups}
    else:
        raw = {g.root_name: g.channels - int(math.floor(level * g.channels)) for g in groups}
    return {g.root_name: round_keep(raw[g.root_name], g.channels, g.floor, round_to) for g in groups}


def score_groups(model: nn.Module, criterion: Criterion, ctx: PruneContext,
                 settings: PruneSettings) -> tuple[list[ChannelGroup], dict[str, torch.Tensor]]:
    """Build the graph on ``model`` and score every prunable group (groups scored None are left alone)."""
    graph = build_graph(model, ctx.example_input)
    protected = protected_modules(model, settings.protect_stem, settings.protect_classifier)
    groups = prunable_groups(model, graph, protected, settings.min_channels, settings.min_keep_ratio)
    criterion.prepare(model, groups, ctx)
    scores: dict[str, torch.Tensor] = {}
    kept_groups = []
    for g in groups:
        s = criterion(g.group)
        if s is None:
            continue
        s = torch.as_tensor(s).detach().float().cpu().flatten()
        if s.numel() != g.channels:
            raise RuntimeError(f"criterion {criterion.name} gave {s.numel()} scores for {g.channels} channels")
        scores[g.root_name] = torch.nan_to_num(s, nan=0.0, posinf=1e30, neginf=-1e30)
        kept_groups.append(g)
    return kept_groups, scores


@contextmanager
def single_thread() -> Iterator[None]:
    """Batch-1 tracing and counting gain nothing from intra-op threads, and threads thrash on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def prune_model(model: nn.Module, criterion: Criterion, budget: Budget, ctx: PruneContext,
                settings: PruneSettings = PruneSettings(), dense_counts: tuple[int, int] | None = None) -> PruneResult:
    """Return a pruned copy of ``model`` meeting ``budget``; ``model`` itself is not changed.

    ``dense_counts`` (MACs, params) sets the reference the reduction is measured from (for gradual pruning).
    """
    custom = criterion.run(model, ctx, budget, settings)
    if custom is not None:
        return custom
    with single_thread():
        return _prune_by_scores(model, criterion, budget, ctx, settings, dense_counts)


def _prune_by_scores(model: nn.Module, criterion: Criterion, budget: Budget, ctx: PruneContext,
                     settings: PruneSettings, dense_counts: tuple[int, int] | None) -> PruneResult:
    start = time.perf_counter()
    model = model.eval()
    work = copy.deepcopy(model)
    dense_macs, dense_params = dense_counts or count(model, ctx.example_input)
    groups, scores = score_groups(work, criterion, ctx, settings)
    if not groups:
        raise EdgepruneError("no layer of this model can be pruned", "check protected layers and floors")
    # score_groups ran on `work`; plans name modules by path, so they apply to `model` copies too.
    dense = dense_macs if budget.kind == "flops" else dense_params
    target = dense * (1.0 - budget.reduction)

    cost = CostModel(work, ctx.example_input)  # same module objects as the groups
    index = 0 if budget.kind == "flops" else 1

    step = settings.round_to or 1

    def estimate(keep: dict[str, int]) -> float:
        return cost.estimate(groups, keep)[index]

    def refine(keep: dict[str, int], goal: float) -> dict[str, int]:
        """Move single groups one step at a time towards ``goal`` (one shared level is too coarse)."""
        keep = dict(keep)
        value = estimate(keep)
        for _ in range(4 * sum(g.channels for g in groups) // step):
            over = value > goal
            # prune more from the group that keeps the largest share, or give back to the one that keeps least
            pool = [g for g in groups if (keep[g.root_name] - step >= g.floor if over else keep[g.root_name] < g.channels)]
            if not pool:
                break
            pick = (max if over else min)(pool, key=lambda g: (keep[g.root_name] / g.channels, g.root_name))
            trial = dict(keep)
            trial[pick.root_name] = min(pick.channels, keep[pick.root_name] + (-step if over else step))
            new_value = estimate(trial)
            if abs(new_value - goal) >= abs(value - goal):
                break
            keep, value = trial, new_value
        return keep

    def search(goal: float) -> dict[str, int]:
        lo, hi = 0.0, 0.999
        best_keep, best_err = _allocate(groups, scores, 0.0, criterion.scope, settings.round_to), float("inf")
        for _ in range(settings.search_steps * 2):
            mid = (lo + hi) / 2
            keep = _allocate(groups, scores, mid, criterion.scope, settings.round_to)
            value = estimate(keep)
            if abs(value - goal) < best_err:
                best_keep, best_err = keep, abs(value - goal)
            lo, hi = (mid, hi) if value > goal else (lo, mid)
        return refine(best_keep, goal)

    def real(keep: dict[str, int]) -> tuple[PruningPlan, nn.Module, int, int]:
        plan = plan_from_keep(model, groups, scores, keep)
        pruned, macs, params = evaluate_plan(model, plan, ctx.example_input)
        return plan, pruned, macs, params

    keep = search(target)
    plan, pruned, macs, params = real(keep)
    value = macs if budget.kind == "flops" else params
    # the estimate is calibrated but not exact: correct the goal by the observed ratio a few times
    for _ in range(3):
        if abs(value - target) / dense <= budget.tolerance / 2:
            break
        keep = search(target * estimate(keep) / max(value, 1))
        plan, pruned, macs, params = real(keep)
        value = macs if budget.kind == "flops" else params
    level = sum(1 - keep[g.root_name] / g.channels for g in groups) / len(groups)
    err = abs(value - target) / dense
    if err > budget.tolerance:
        _, _, min_macs, min_params = real({g.root_name: g.floor for g in groups})
        most = 1 - (min_macs if budget.kind == "flops" else min_params) / dense
        raise EdgepruneError(
            f"cannot reach {budget.describe()} within ±{budget.tolerance:.0%}: the closest is "
            f"{1 - value / dense:.1%} (at most {most:.1%} with these floors, protected layers and round_to)",
            "lower the reduction, lower --min-channels/--round-to, or raise the tolerance",
        )
    result = PruneResult(
        model=pruned.eval(), plan=plan, criterion=criterion.name, budget=budget, dense_macs=dense_macs,
        dense_params=dense_params, macs=macs, params=params, level=level, seconds=time.perf_counter() - start,
        widths=plan.widths(),
    )
    return result
