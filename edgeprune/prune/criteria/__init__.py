"""Registry of pruning criteria. Adding one: a file here plus its import line below."""

from __future__ import annotations

from typing import Any

from edgeprune.registry import Registry

CRITERIA: Registry[Any] = Registry("criterion")

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


def create_criterion(name: str, **options: Any) -> Any:
    """Instantiate a registered criterion with validated options."""
    return CRITERIA.get(name)(**options)
