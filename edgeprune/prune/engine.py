"""Prune a model to a budget: a procedure runs itself; a scorer's scores are cut at the level meeting the budget.

The score-then-cut path: set up the groups, score them, then search the one pruning level (a per-group
fraction, or one global quantile for ``scope = "global"`` scorers) whose cost-model estimate meets the goal,
refine it group by group, and fit it to the budget with the real counts (``edgeprune.prune.fit``).
``prune_gradually`` repeats that at rising reductions (cubic schedule) with training in between.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn as nn

from edgeprune.budget import Budget, count
from edgeprune.errors import EdgepruneError
from edgeprune.prune.cost import CostModel
from edgeprune.prune.criterion import Criterion, Procedure, Scorer
from edgeprune.prune.fit import GroupSet, fit_to_budget, setup_groups
from edgeprune.prune.graph import ChannelGroup, round_keep
from edgeprune.prune.plan import PruningPlan
from edgeprune.prune.types import PruneContext, PruneResult, PruneSettings

__all__ = ["cubic_schedule", "prune_by_scores", "prune_gradually", "prune_model", "score_groups"]

Keep = dict[str, int]
DEFAULTS = PruneSettings()


def score_groups(model: nn.Module, scorer: Scorer, ctx: PruneContext,
                 settings: PruneSettings) -> tuple[list[ChannelGroup], dict[str, torch.Tensor]]:
    """Set up the groups of ``model`` and score each (groups scored None are left alone)."""
    groups = setup_groups(model, ctx.example_input, settings)
    scorer.prepare(model, groups, ctx)
    scores: dict[str, torch.Tensor] = {}
    kept_groups = []
    for g in groups:
        s = scorer(g.group)
        if s is None:
            continue
        s = torch.as_tensor(s).detach().float().cpu().flatten()
        if s.numel() != g.channels:
            raise RuntimeError(f"criterion {scorer.name} gave {s.numel()} scores for {g.channels} channels")
        scores[g.root_name] = torch.nan_to_num(s, nan=0.0, posinf=1e30, neginf=-1e30)
        kept_groups.append(g)
    return GroupSet(kept_groups, groups.unpruned), scores


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
                settings: PruneSettings = DEFAULTS, dense_counts: tuple[int, int] | None = None) -> PruneResult:
    """Return a pruned copy of ``model`` meeting ``budget``; ``model`` itself is not changed.

    ``dense_counts`` (MACs, params) sets the reference the reduction is measured from (for gradual pruning).
    """
    if isinstance(criterion, Procedure):
        return criterion.run(model, ctx, budget, settings)
    if not isinstance(criterion, Scorer):
        raise TypeError(f"{criterion!r} is neither a Scorer nor a Procedure")
    with single_thread():
        return prune_by_scores(model, criterion, budget, ctx, settings, dense_counts)


def _allocate(groups: list[ChannelGroup], scores: dict[str, torch.Tensor], level: float, scope: str,
              round_to: int | None) -> Keep:
    """Keep counts at one pruning level: a fraction of every group, or one global score quantile."""
    if scope == "global":
        pool = torch.cat([scores[g.root_name] for g in groups])
        threshold = torch.quantile(pool.float(), level) if level > 0 else pool.min() - 1
        raw = {g.root_name: int((scores[g.root_name] > threshold).sum()) for g in groups}
    else:
        raw = {g.root_name: g.channels - int(math.floor(level * g.channels)) for g in groups}
    return {g.root_name: round_keep(raw[g.root_name], g.channels, g.floor, round_to) for g in groups}


def _refine(groups: list[ChannelGroup], keep: Keep, goal: float, estimate: Callable[[Keep], float],
            step: int) -> Keep:
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


def _search(groups: list[ChannelGroup], scores: dict[str, torch.Tensor], scope: str, settings: PruneSettings,
            estimate: Callable[[Keep], float], goal: float) -> Keep:
    """Bisect the level whose estimate is closest to ``goal``, then refine group by group."""
    lo, hi = 0.0, 0.999
    best_keep, best_err = _allocate(groups, scores, 0.0, scope, settings.round_to), float("inf")
    for _ in range(settings.search_steps * 2):
        mid = (lo + hi) / 2
        keep = _allocate(groups, scores, mid, scope, settings.round_to)
        value = estimate(keep)
        if abs(value - goal) < best_err:
            best_keep, best_err = keep, abs(value - goal)
        lo, hi = (mid, hi) if value > goal else (lo, mid)
    return _refine(groups, best_keep, goal, estimate, settings.round_to or 1)


def prune_by_scores(model: nn.Module, scorer: Scorer, budget: Budget, ctx: PruneContext,
                    settings: PruneSettings = DEFAULTS,
                    dense_counts: tuple[int, int] | None = None) -> PruneResult:
    """One-shot pruning: score every group once, cut the lowest scores until the budget is met."""
    start = time.perf_counter()
    model = model.eval()
    work = copy.deepcopy(model)  # prepare() may run hooks and backward passes: never on the caller's model
    dense = dense_counts or count(model, ctx.example_input)
    groups, scores = score_groups(work, scorer, ctx, settings)
    if not groups:
        raise EdgepruneError("no layer of this model can be pruned", "check protected layers and floors")
    cost = CostModel(work, ctx.example_input)  # same module objects as the groups

    def estimate(keep: Keep) -> float:
        return budget.measure(*cost.estimate(groups, keep))

    unpruned = groups.unpruned_summary() if isinstance(groups, GroupSet) else []
    if unpruned:
        by_reason: dict[str, list[str]] = {}
        for u in unpruned:
            by_reason.setdefault(u["reason"], []).append(u["layer"])
        ctx.log(f"{len(unpruned)} layers left unpruned (listed in the report under prune.unpruned):")
        for reason, layers in by_reason.items():
            ctx.log(f"  {', '.join(layers)}: {reason}")
    fit = fit_to_budget(work, groups, scores, budget, dense, ctx.example_input,
                        lambda goal: _search(groups, scores, scorer.scope, settings, estimate, goal), estimate,
                        aim=budget.tolerance / 2)
    level = sum(1 - fit.keep[g.root_name] / g.channels for g in groups) / len(groups)
    notes = [f"{len(unpruned)} layers left unpruned: torch-pruning cannot follow their channels"] if unpruned else []
    return fit.result(scorer.name, budget, dense, level, start, notes=notes, extra={"unpruned": unpruned})


def cubic_schedule(final: float, steps: int) -> list[float]:
    """Zhu & Gupta (2017): reductions rising fast first, then levelling off towards ``final``."""
    return [final * (1 - (1 - i / steps) ** 3) for i in range(1, steps + 1)]


def prune_gradually(model: nn.Module, make_scorer: Callable[[], Criterion], budget: Budget, ctx: PruneContext,
                    settings: PruneSettings, steps: int, epochs_between: int) -> PruneResult:
    """Prune in ``steps`` one-shot steps of rising reduction (cubic schedule), training between the steps
    (distilling from ``model``) with ``ctx.train_fn``; every step measures its reduction from ``model``."""
    probe = make_scorer()
    if not isinstance(probe, Scorer):
        raise EdgepruneError(
            f"--iterative-steps does not apply to '{probe.name}', which is a whole procedure of its own",
            "use --iterative-steps 1 with it, or a scoring criterion such as l1 or beta-rank for gradual pruning",
        )
    dense_counts = count(model, ctx.example_input)
    plan_steps: list[Any] = []
    current, result = model, None
    schedule = cubic_schedule(budget.reduction, steps)
    for i, reduction in enumerate(schedule, start=1):
        scorer = probe if i == 1 else make_scorer()
        result = prune_model(current, scorer, budget.at(reduction), ctx, settings, dense_counts)
        plan_steps += result.plan.steps
        current = result.model
        ctx.log(f"gradual step {i}/{steps}: {result.achieved_reduction:.1%} reduction")
        if i < len(schedule) and ctx.train_fn is not None:
            current = ctx.train_fn(current, epochs_between, teacher=model).model
    assert result is not None
    result.model = current
    result.plan = PruningPlan(steps=plan_steps)
    result.notes.append(f"gradual pruning in {steps} steps (cubic schedule)")
    return result
