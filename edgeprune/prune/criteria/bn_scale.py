"""Network Slimming (Liu et al. 2017): a channel's importance is |γ| of its BatchNorm(s).

Scores are |γ| averaged over every BN of the dependency group (coupled residual BNs count together).
Ranking is per group (``scope = "local"``): the paper thresholds γ globally, but only after L1 sparse
training makes the γ of different layers comparable; on a normally trained network a global γ threshold
mostly measures each layer's BN scale. Sparse training itself belongs to the ``masksparsity`` criterion.

Groups without any affine BatchNorm (a plain conv feeding a linear layer, a user model without BN) fall back
to the group L1 norm of the weights; ``prepare`` logs how many groups did so.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch_pruning as tp

from edgeprune.prune.criteria.registry import CRITERIA
from edgeprune.prune.criterion import Scorer
from edgeprune.prune.graph import ChannelGroup
from edgeprune.prune.types import PruneContext


@CRITERIA.register("bn-scale")
class BNScaleCriterion(Scorer):
    name = "bn-scale"
    summary = "|gamma| of the group's BatchNorms (Network Slimming); L1 for groups without BN"
    paper = "https://arxiv.org/abs/1708.06519"

    def __init__(self, **options: object) -> None:
        super().__init__(**options)
        self._bn = tp.importance.BNScaleImportance(group_reduction="mean", normalizer=None)
        self._fallback = tp.importance.GroupMagnitudeImportance(p=1, group_reduction="mean", normalizer=None)

    def prepare(self, model: nn.Module, groups: list[ChannelGroup], ctx: PruneContext) -> None:
        without = [g.root_name for g in groups if self._bn(g.group) is None]
        if without:
            ctx.log(f"bn-scale: {len(without)} group(s) have no BatchNorm and are ranked by L1 instead "
                    f"({', '.join(without[:3])}{', ...' if len(without) > 3 else ''})")

    def __call__(self, group: tp.Group) -> torch.Tensor | None:
        scores: torch.Tensor | None = self._bn(group)
        if scores is None:
            scores = self._fallback(group)
        return scores
