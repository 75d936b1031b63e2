"""L1 filter norm over the whole dependency group (Li et al. 2017, "Pruning Filters for Efficient ConvNets")."""

from __future__ import annotations

from typing import ClassVar

import torch
import torch_pruning as tp

from edgeprune.prune.criteria.registry import CRITERIA
from edgeprune.prune.criterion import Scorer


@CRITERIA.register("l1")
class L1Criterion(Scorer):
    name = "l1"
    summary = "sum of |w| of each channel across every coupled layer (weights only)"
    paper = "https://arxiv.org/abs/1608.08710"
    p: ClassVar[int] = 1  # the norm's power (``l2`` sets 2)

    def __init__(self, **options: object) -> None:
        super().__init__(**options)
        self._inner = tp.importance.GroupMagnitudeImportance(p=self.p, group_reduction="mean", normalizer=None)

    def __call__(self, group: tp.Group) -> torch.Tensor | None:
        scores: torch.Tensor | None = self._inner(group)
        return scores
