"""The criterion interface: a torch-pruning importance over dependency groups that declares what it needs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import torch
import torch.nn as nn
import torch_pruning as tp
from pydantic import BaseModel, ConfigDict, ValidationError

from edgeprune.errors import EdgepruneError

if TYPE_CHECKING:
    from edgeprune.prune.budget import Budget
    from edgeprune.prune.engine import PruneResult, PruneSettings
    from edgeprune.prune.graph import ChannelGroup


class NoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass
class PruneContext:
    """What a criterion may use: an example input, calibration batches, a loss, and a way to train."""

    example_input: torch.Tensor
    calib_batches: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = torch.nn.functional.cross_entropy
    device: torch.device = torch.device("cpu")
    # train_fn(model, epochs, after_backward_hook) -> history; given by the pipeline for criteria with a training phase
    train_fn: Callable[..., Any] | None = None
    # model_factory() -> a freshly initialised model of the same architecture (pruning at initialisation)
    model_factory: Callable[[], nn.Module] | None = None
    seed: int = 0
    log: Callable[[str], None] = print


class Criterion(tp.importance.Importance):
    """Scores the channels of a group; lower scores are pruned first.

    Subclasses set the class attributes, an ``Options`` model for their settings, and implement ``__call__``.
    Criteria that are whole procedures (pruning at init, sparse training) override ``run`` instead.
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    paper: ClassVar[str] = ""
    needs_data: ClassVar[bool] = False
    needs_grad: ClassVar[bool] = False
    needs_training: ClassVar[bool] = False
    scope: ClassVar[Literal["local", "global"]] = "local"
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

    def prepare(self, model: nn.Module, groups: list[ChannelGroup], ctx: PruneContext) -> None:
        """Collect what the scores need (activations, gradients); default: nothing."""

    def __call__(self, group: tp.Group) -> torch.Tensor | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def run(
        self, model: nn.Module, ctx: PruneContext, budget: Budget, settings: PruneSettings
    ) -> PruneResult | None:
        """Override to replace the default score-then-cut procedure; ``None`` means use the default."""
        return None

    @classmethod
    def capabilities(cls) -> dict[str, Any]:
        return {
            "needs_data": cls.needs_data,
            "needs_grad": cls.needs_grad,
            "needs_training": cls.needs_training,
            "scope": cls.scope,
            "options": list(cls.Options.model_fields),
        }


def scatter_to_root(group: tp.Group, layer_scores: list[tuple[torch.Tensor, list[int]]], channels: int) -> torch.Tensor:
    """Sum per-layer scores (each with its ``root_idxs``) into the root's channel order."""
    total = torch.zeros(channels)
    for scores, root_idxs in layer_scores:
        total.index_add_(0, torch.as_tensor(root_idxs, dtype=torch.long), scores.detach().float().cpu())
    return total
