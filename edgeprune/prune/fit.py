"""One group set-up and one fit-to-budget, shared by the engine's score-then-cut and by every procedure.

``setup_groups`` finds the dependency groups whose width may change under the settings' floors and protected
layers. ``fit_to_budget`` turns a way of choosing keep counts for a goal (a cost-model search over scores,
a width solver, ...) into a pruned copy of the model whose real MAC or parameter count meets the budget:
the cost model is calibrated but not exact, so the goal is corrected by the real count a few times.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from edgeprune.budget import Budget, count
from edgeprune.errors import EdgepruneError
from edgeprune.prune.graph import ChannelGroup, build_graph, protected_modules, prunable_groups
from edgeprune.prune.plan import PlanEntry, PruningPlan, apply_plan
from edgeprune.prune.types import PruneResult, PruneSettings
from edgeprune.prune.unprunable import Unprunable, split_unprunable

__all__ = ["Fit", "GroupSet", "evaluate_plan", "fit_to_budget", "plan_from_keep", "realise", "setup_groups"]

FIT_ROUNDS = 4  # real counts per fit: the first choice plus three corrections of the goal


class GroupSet(list[ChannelGroup]):
    """The prunable groups, plus ``unpruned``: the layers left as they are because torch-pruning cannot follow
    their channels (each with the reason)."""

    def __init__(self, groups: list[ChannelGroup], unpruned: list[Unprunable]) -> None:
        super().__init__(groups)
        self.unpruned = unpruned

    def unpruned_summary(self) -> list[dict[str, str]]:
        return [u.summary() for u in self.unpruned]


def setup_groups(model: nn.Module, example_input: torch.Tensor, settings: PruneSettings) -> GroupSet:
    """Every prunable dependency group of ``model`` (stable order), after floors and protected layers, without
    the groups torch-pruning cannot follow (channel shuffle, split, unusual reshapes: see ``unpruned``)."""
    graph = build_graph(model, example_input)
    protected = protected_modules(model, settings.protect_stem, settings.protect_classifier)
    failures: dict[str, str] = {}
    groups = prunable_groups(model, graph, protected, settings.min_channels, settings.min_keep_ratio, failures)
    groups, unpruned = split_unprunable(model, graph, groups, example_input)
    unpruned = sorted(unpruned + [Unprunable(n, why) for n, why in failures.items()], key=lambda u: u.layer)
    if not groups and unpruned:
        raise EdgepruneError(
            f"no layer of this model can be pruned: torch-pruning cannot follow the channels of any of its "
            f"{len(unpruned)} layer groups (e.g. '{unpruned[0].layer}': {unpruned[0].reason})",
            "use a model without channel shuffles, channel splits or channel reshapes (e.g. mobilenetv3_small)",
        )
    if not groups:
        raise EdgepruneError("no layer of this model can be pruned", "check protected layers and floors")
    return GroupSet(groups, unpruned)


def plan_from_keep(model: nn.Module, groups: list[ChannelGroup], scores: dict[str, torch.Tensor],
                   keep: dict[str, int]) -> PruningPlan:
    """Keep the ``keep[root]`` best-scoring channels of each group (ties broken by index).

    ``model`` is the one the groups were built on (it names the coupled layers).
    """
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
    """A pruned copy of ``model`` and its (MACs, params)."""
    pruned = apply_plan(copy.deepcopy(model), plan, example_input)
    macs, params = count(pruned, example_input)
    return pruned, macs, params


@dataclass
class Fit:
    """Keep counts realised on a copy of the model: its plan, the pruned copy and its counts."""

    keep: dict[str, int]
    plan: PruningPlan
    model: nn.Module
    macs: int
    params: int
    error: float = 0.0  # |achieved - target| as a fraction of the dense count (set by fit_to_budget)

    def result(self, criterion: str, budget: Budget, dense: tuple[int, int], level: float, start: float,
               notes: list[str] | None = None, recovery: str = "finetune",
               extra: dict[str, Any] | None = None) -> PruneResult:
        """The prune result of a run that started at ``start`` (a ``time.perf_counter()`` value)."""
        return PruneResult(
            model=self.model.eval(), plan=self.plan, criterion=criterion, budget=budget, dense_macs=dense[0],
            dense_params=dense[1], macs=self.macs, params=self.params, level=level,
            seconds=time.perf_counter() - start, notes=notes or [], recovery=recovery, extra=extra or {},
        )


def realise(model: nn.Module, groups: list[ChannelGroup], scores: dict[str, torch.Tensor], keep: dict[str, int],
            example_input: torch.Tensor) -> Fit:
    """Prune a copy of ``model`` (the one the groups were built on) to ``keep``, best scores first."""
    plan = plan_from_keep(model, groups, scores, keep)
    pruned, macs, params = evaluate_plan(model, plan, example_input)
    return Fit(keep, plan, pruned, macs, params)


def fit_to_budget(model: nn.Module, groups: list[ChannelGroup], scores: dict[str, torch.Tensor], budget: Budget,
                  dense: tuple[int, int], example_input: torch.Tensor, choose: Callable[[float], dict[str, int]],
                  estimate: Callable[[dict[str, int]], float], aim: float, how: str = "") -> Fit:
    """Meet ``budget`` on a copy of ``model``, or say how far the floors allow.

    ``choose(goal)`` gives keep counts whose ``estimate`` (the budget's count, from a cost model) is near
    ``goal``. The real count is taken after each choice; while it is further than ``aim`` (a fraction of the
    dense count) from the target, the goal is scaled by estimate/real and chosen again, up to FIT_ROUNDS
    times. ``dense`` is the (MACs, params) the reduction is measured from; ``how`` names the method in errors.
    """
    whole = budget.measure(*dense)
    target = whole * (1.0 - budget.reduction)
    goal = target
    for _ in range(FIT_ROUNDS):
        keep = choose(goal)
        fit = realise(model, groups, scores, keep, example_input)
        value = budget.measure(fit.macs, fit.params)
        if abs(value - target) / whole <= aim:
            break
        goal = target * estimate(keep) / max(value, 1)
    fit.error = abs(value - target) / whole
    if fit.error > budget.tolerance:
        smallest = realise(model, groups, scores, {g.root_name: g.floor for g in groups}, example_input)
        most = 1 - budget.measure(smallest.macs, smallest.params) / whole
        raise EdgepruneError(
            f"cannot reach {budget.describe()} within ±{budget.tolerance:.0%}{how}: the closest is "
            f"{1 - value / whole:.1%} (at most {most:.1%} with these floors, protected layers and round_to)",
            "lower the reduction, lower --min-channels/--round-to, or raise the tolerance",
        )
    return fit
