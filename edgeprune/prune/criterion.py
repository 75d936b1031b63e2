"""The two kinds of registered criterion: scorers and procedures.

- A :class:`Scorer` only scores: ``prepare`` collects what it needs (activations, gradients), then
  ``scorer(group)`` gives one importance per channel of a dependency group (torch-pruning's
  ``Importance.__call__(group)``); the engine cuts the lowest scores until the budget is met.
- A :class:`Procedure` drives its own prune/train steps in ``run`` (pruning at initialisation, sparse
  training, ...), through the same group set-up and fit-to-budget as the engine (``edgeprune.prune.fit``).

Both declare what they need on the class (``needs_data``, ``needs_grad``, ``needs_training``,
``retrains_from_scratch``) and their settings as a pydantic ``Options`` model, validated on construction.
A procedure is recognised by its type: ``isinstance(c, Procedure)`` (or ``cls.kind == "procedure"``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Literal

import torch
import torch.nn as nn
import torch_pruning as tp
from pydantic import BaseModel, ConfigDict, ValidationError

from edgeprune.budget import Budget
from edgeprune.errors import EdgepruneError
from edgeprune.prune.fit import Fit
from edgeprune.prune.graph import ChannelGroup
from edgeprune.prune.types import PruneContext, PruneResult, PruneSettings

__all__ = ["Criterion", "NoOptions", "Procedure", "Scorer", "scatter_to_root"]


class NoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Criterion(ABC):
    """What every registered criterion declares: name, summary, needs and options."""

    kind: ClassVar[Literal["scorer", "procedure"]]
    name: ClassVar[str]
    summary: ClassVar[str]
    paper: ClassVar[str] = ""
    needs_data: ClassVar[bool] = False  # calibration batches
    needs_grad: ClassVar[bool] = False  # backward passes through the model
    needs_training: ClassVar[bool] = False  # the pipeline's training function, while pruning
    retrains_from_scratch: ClassVar[bool] = False  # the pruned model is re-initialised and fully trained
    scope: ClassVar[Literal["local", "global"]] = "local"  # how scores are compared: per group or network-wide
    Options: ClassVar[type[BaseModel]] = NoOptions

    def __init__(self, **options: Any) -> None:
        try:
            self.options = self.Options.model_validate(options)
        except ValidationError as exc:
            err = exc.errors()[0]
            key = ".".join(str(p) for p in err["loc"])
            known = ", ".join(self.Options.model_fields) or "none"
            raise EdgepruneError(
                f"criterion '{self.name}': bad option '{key}' ({err['msg']})", f"options it takes: {known}"
            ) from None

    @classmethod
    def needs(cls) -> list[str]:
        """What running it takes beyond the trained weights, in words (empty: the weights alone)."""
        flags = {"data": cls.needs_data, "grad": cls.needs_grad, "training": cls.needs_training,
                 "training from scratch": cls.retrains_from_scratch}
        return [word for word, needed in flags.items() if needed]

    @classmethod
    def capabilities(cls) -> dict[str, Any]:
        return {
            "kind": cls.kind,
            "needs": cls.needs(),
            "needs_data": cls.needs_data,
            "needs_grad": cls.needs_grad,
            "needs_training": cls.needs_training,
            "retrains_from_scratch": cls.retrains_from_scratch,
            "scope": cls.scope if cls.kind == "scorer" else "-",
            "options": list(cls.Options.model_fields),
        }


class Scorer(Criterion, tp.importance.Importance):
    """Scores the channels of a group; lower scores are pruned first. Implement ``__call__`` (and ``prepare``)."""

    kind = "scorer"

    def prepare(self, model: nn.Module, groups: list[ChannelGroup], ctx: PruneContext) -> None:
        """Collect what the scores need (activations, gradients); default: nothing."""

    @abstractmethod
    def __call__(self, group: tp.Group) -> torch.Tensor | None:
        """One score per channel of ``group`` in its root's order, or None to leave the group alone."""


class Procedure(Criterion):
    """A whole pruning procedure: implement ``run``; the engine hands it the model, context, budget and settings."""

    kind = "procedure"

    @abstractmethod
    def run(self, model: nn.Module, ctx: PruneContext, budget: Budget, settings: PruneSettings) -> PruneResult:
        """Return a pruned model meeting ``budget``; ``model`` itself is not changed."""

    def result(self, fit: Fit, budget: Budget, dense: tuple[int, int], level: float, start: float,
               notes: list[str], extra: dict[str, Any]) -> PruneResult:
        """The result of a run that ended in ``fit``; how to recover follows ``retrains_from_scratch``."""
        recovery = "train-from-scratch" if self.retrains_from_scratch else "finetune"
        return fit.result(self.name, budget, dense, level, start, notes, recovery, extra)


def scatter_to_root(group: tp.Group, layer_scores: list[tuple[torch.Tensor, list[int]]], channels: int) -> torch.Tensor:
    """Sum per-layer scores (each with its ``root_idxs``) into the root's channel order."""
    total = torch.zeros(channels)
    for scores, root_idxs in layer_scores:
        total.index_add_(0, torch.as_tensor(root_idxs, dtype=torch.long), scores.detach().float().cpu())
    return total
