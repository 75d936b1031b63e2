"""The registry of pruning criteria, scorers and procedures alike; each criterion file registers itself here."""

from __future__ import annotations

from typing import Any

from edgeprune.prune.criterion import Criterion
from edgeprune.registry import Registry

CRITERIA: Registry[type[Criterion]] = Registry("criterion")


def create_criterion(name: str, **options: Any) -> Criterion:
    """Instantiate a registered criterion with validated options."""
    return CRITERIA.get(name)(**options)
