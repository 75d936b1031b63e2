"""Structured pruning over torch-pruning's dependency graph: criteria, budgets, plans.

Layers, bottom up (the budget rule itself is edgeprune/budget.py): graph, pai, activation_stats -> plan, cost,
sparsity, width_solver -> types -> fit (group set-up, fit to budget) -> criterion (Scorer, Procedure) -> engine
-> criteria (the registry).
Names are loaded on first use, so ``edgeprune.prune`` can be imported without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Budget": "edgeprune.budget",
    "PruneContext": "edgeprune.prune.types",
    "PruneResult": "edgeprune.prune.types",
    "PruneSettings": "edgeprune.prune.types",
    "Procedure": "edgeprune.prune.criterion",
    "Scorer": "edgeprune.prune.criterion",
    "PruningPlan": "edgeprune.prune.plan",
    "apply_plan": "edgeprune.prune.plan",
    "fit_to_budget": "edgeprune.prune.fit",
    "prune_model": "edgeprune.prune.engine",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'edgeprune.prune' has no attribute '{name}'")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
