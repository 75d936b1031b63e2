"""edgeprune: prune, convert, verify and profile image CNNs for phones.

The Python API (``edgeprune.build(model, train=..., ...)`` and friends, see README "Python API") is loaded on
first use, so ``import edgeprune`` stays light for commands that never build. The stage functions carry a
suffix (``prune_model``, ``export_model``) because ``edgeprune.prune`` and ``edgeprune.export`` are packages.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_API = ("Artifact", "BuildResult", "build", "check", "export_model", "load_result", "profile_model",
        "prune_model", "verify_model")
__all__ = [*_API, "ArraySource", "EdgepruneError", "__version__"]


def __getattr__(name: str) -> Any:
    if name in _API:
        from edgeprune import api

        return getattr(api, name)
    if name == "ArraySource":
        from edgeprune.data import ArraySource

        return ArraySource
    if name == "EdgepruneError":
        from edgeprune.errors import EdgepruneError

        return EdgepruneError
    raise AttributeError(f"module 'edgeprune' has no attribute '{name}'")
