"""L1 filter norm over the whole dependency group (Li et al. 2017, "Pruning Filters for Efficient ConvNets")."""

from __future__ import annotations

import torch
import torch_pruning as tp

from edgeprune.prune.criteria import CRITERIA
from edgeprune.prune.criteria.base import Criterion


@CRITERIA.register("l1")
class L1Criterion(Criterion):
    name = "l1"
    summary = "sum of |w| of each channel across every coupled layer (weights only)"
    paper = "https://arxiv.org/abs/1608.08710"

    def __init__(self, **options: object) -> None:
        super().__init__(**options)
        self._inner = tp.importance.GroupMagnitudeImportance(p=1, group_reduction="mean", normalizer=None)

    def __call__(self, group: tp.Group) -> torch.Tensor | None:
        return self._inner(group)
