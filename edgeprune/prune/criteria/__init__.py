"""Pruning criteria, scorers and procedures alike (``edgeprune.prune.criterion``).

Adding one: a file here that registers its class in ``registry.CRITERIA``, plus its import line below.
"""

from __future__ import annotations

from edgeprune.prune.criteria import (  # noqa: F401  (explicit import list: each module registers itself)
    beta_rank,
    bn_scale,
    fpgm,
    global_magnitude,
    l1,
    l2,
    masksparsity,
    precropping,
    random_,
    taylor,
)
from edgeprune.prune.criteria.registry import CRITERIA, create_criterion

__all__ = ["CRITERIA", "create_criterion"]
