"""The build pipeline: named stages, a manifest written after each, cache keys for resuming.

Imported lazily so that commands which never build (serve, publish) do not load torch.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BuildOutcome", "run_build"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from edgeprune.pipeline import runner

        return getattr(runner, name)
    raise AttributeError(name)
