"""Registry of pruning criteria, scorers and procedures alike (``edgeprune.prune.criterion``).

Adding one: a file here that registers its class, plus its import line below.
"""

from __future__ import annotations

from typing import Any

from edgeprune.prune.criterion import Criterion
from edgeprune.registry import Registry

CRITERIA: Registry[type[Criterion]] = Registry("criterion")


def create_criterion(name: str, **options: Any) -> Criterion:
    """Instantiate a registered criterion with validated options."""
    return CRITERIA.get(name)(**options)


# Explicit import list: each module registers itself.
from edgeprune.prune.criteria import (  # noqa: E402,F401
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
