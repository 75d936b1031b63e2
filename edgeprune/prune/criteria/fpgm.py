"""Filter pruning via the geometric median (He et al., CVPR 2019).

A filter close to the geometric median of its layer's filters is the one the others can best stand in for,
so its importance is the sum of its Euclidean distances to all filters of the layer; lowest goes first.
Distances are taken between the signed filters, as in the paper. (torch-pruning 1.6.1's FPGMImportance
measures distances between |w|^p instead, losing the sign, and skips depthwise convs; hence this version.)
Coupled layers of a group (consumers' input slices, other producers of a residual stream) are scored the
same way; each layer's distances are divided by their mean so every layer counts equally, then averaged.
"""

from __future__ import annotations

import torch
import torch_pruning as tp

from edgeprune.prune.channels import channel_rows
from edgeprune.prune.criteria.registry import CRITERIA
from edgeprune.prune.criterion import Scorer, scatter_to_root


def distance_sums(rows: torch.Tensor) -> torch.Tensor:
    """For each row, the sum of its Euclidean distances to every row."""
    rows = rows.float()
    return torch.cdist(rows, rows).sum(1)


@CRITERIA.register("fpgm")
class FPGMCriterion(Scorer):
    name = "fpgm"
    summary = "distance of each filter to the others (geometric median filters go first; weights only)"
    paper = "https://arxiv.org/abs/1811.00250"

    @torch.no_grad()
    def __call__(self, group: tp.Group) -> torch.Tensor | None:
        parts = []
        for rows, root_idxs, _, _ in channel_rows(group):
            d = distance_sums(rows)
            mean = d.mean()
            parts.append((d / mean if mean > 0 else d, root_idxs))
        if not parts:
            return None
        return scatter_to_root(group, parts, len(group[0].idxs)) / len(parts)
