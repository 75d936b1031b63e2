"""Lazy imports of optional dependencies with an install hint instead of an ImportError trace."""

from __future__ import annotations

import importlib
from types import ModuleType

from edgeprune.errors import MissingExtraError


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or raise a one-line error telling which extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - exercised via tests with a fake module name
        raise MissingExtraError(module, extra) from exc
