"""L2 filter norm over the whole dependency group (the L2 variant of Li et al. 2017)."""

from __future__ import annotations

import torch
import torch_pruning as tp

from edgeprune.prune.criteria import CRITERIA
from edgeprune.prune.criteria.base import Criterion


@CRITERIA.register("l2")
class L2Criterion(Criterion):
    name = "l2"
    summary = "sum of w^2 of each channel across every coupled layer (weights only)"
    paper = "https://arxiv.org/abs/1608.08710"

    def __init__(self, **options: object) -> None:
        super().__init__(**options)
        # squared norms summed over the group's layers; the ranking equals that of the group L2 norm
        self._inner = tp.importance.GroupMagnitudeImportance(p=2, group_reduction="mean", normalizer=None)

    def __call__(self, group: tp.Group) -> torch.Tensor | None:
        scores: torch.Tensor | None = self._inner(group)
        return scores
