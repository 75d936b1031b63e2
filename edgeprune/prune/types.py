"""The types every pruning module shares, below the engine and every criterion.

``PruneContext``: what a criterion may use (example input, calibration batches, a loss, a way to train).
``PruneSettings``: floors, protected layers and rounding of the group set-up, and the search's effort.
``PruneResult``: the pruned model, its plan and its counts; ``summary()`` is the prune stage's report record.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn

from edgeprune.budget import Budget
from edgeprune.errors import EdgepruneError
from edgeprune.prune.plan import PruningPlan

__all__ = ["PruneContext", "PruneResult", "PruneSettings"]


@dataclass(frozen=True)
class PruneSettings:
    min_channels: int = 4
    min_keep_ratio: float = 0.1
    round_to: int | None = None
    protect_stem: bool = True
    protect_classifier: bool = True
    search_steps: int = 22


@dataclass
class PruneContext:
    """What a criterion may use: an example input, calibration batches, a loss, and a way to train."""

    example_input: torch.Tensor
    calib_batches: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = torch.nn.functional.cross_entropy
    device: torch.device = torch.device("cpu")
    # train_fn(model, epochs, after_backward=[hooks], lr=None, teacher=None) -> TrainResult; given by the pipeline
    # to procedures with a training phase (``needs_training``) and to gradual pruning
    train_fn: Callable[..., Any] | None = None
    # model_factory() -> a freshly initialised model of the same architecture (pruning at initialisation)
    model_factory: Callable[[], nn.Module] | None = None
    seed: int = 0
    log: Callable[[str], None] = print

    def calibration(self, criterion: str, max_batches: int | None = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The first ``max_batches`` calibration batches (all by default); an error naming ``criterion`` if none."""
        batches = list(self.calib_batches)[:max_batches]
        if not batches:
            raise EdgepruneError(f"criterion '{criterion}' needs calibration data but none was given",
                                 "pass calibration batches (a class-stratified sample of the training set)")
        return batches


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
    notes: list[str] = field(default_factory=list)
    # how the next stage recovers accuracy: "finetune" (from these weights, with distillation) or
    # "train-from-scratch" (re-initialised weights, full training schedule: pruning at initialisation)
    recovery: str = "finetune"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def widths(self) -> dict[str, tuple[int, int]]:
        """root -> (channels before, channels kept), from the plan."""
        return self.plan.widths()

    @property
    def achieved_reduction(self) -> float:
        return 1.0 - self.budget.measure(self.macs, self.params) / self.budget.measure(self.dense_macs,
                                                                                      self.dense_params)

    def summary(self) -> dict[str, Any]:
        return {
            "criterion": self.criterion,
            "budget": {"kind": self.budget.kind, "reduction": self.budget.reduction,
                       "tolerance": self.budget.tolerance},
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
