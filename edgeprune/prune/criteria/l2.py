"""L2 filter norm over the whole dependency group (the L2 variant of Li et al. 2017)."""

from __future__ import annotations

from edgeprune.prune.criteria.l1 import L1Criterion
from edgeprune.prune.criteria.registry import CRITERIA


@CRITERIA.register("l2")
class L2Criterion(L1Criterion):
    """Squared norms summed over the group's layers; the ranking equals that of the group L2 norm."""

    name = "l2"
    summary = "sum of w^2 of each channel across every coupled layer (weights only)"
    p = 2
