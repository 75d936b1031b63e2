"""Structured pruning over torch-pruning's dependency graph: criteria, budgets, plans."""

from edgeprune.prune.budget import Budget
from edgeprune.prune.engine import PruneContext, PruneResult, prune_model
from edgeprune.prune.plan import PruningPlan, apply_plan

__all__ = ["Budget", "PruneContext", "PruneResult", "PruningPlan", "apply_plan", "prune_model"]
