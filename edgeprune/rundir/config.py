"""The build config of a run, rebuilt from its manifest: the one place that does it.

Relative paths in the recorded config (dataset, weights, a ``file.py:factory`` model) are resolved against the
working directory of the command that built the run when they do not exist from here.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from edgeprune.config import MEMORY_DATA, BuildConfig, apply_overrides, validate_config
from edgeprune.rundir.manifest import Manifest


def _absolute(value: str, cwd: str) -> str:
    """A relative path from the original command, resolved against its working directory when needed."""
    p = Path(value).expanduser()
    if p.is_absolute() or p.exists() or not cwd or not (Path(cwd) / p).exists():
        return value
    return str(Path(cwd) / p)


def config_from_manifest(manifest: Manifest, changes: dict[str, Any] | None = None,
                         origin: str = "the run's manifest") -> BuildConfig:
    """The run's resolved config, its relative paths fixed, with ``changes`` (dotted keys) applied."""
    data = copy.deepcopy(manifest.config)
    cwd = next((inv.cwd for inv in reversed(manifest.invocations) if inv.cwd), "")
    source = data.get("data", {}).get("source", "embedded")
    if source != "embedded" and not str(source).startswith(MEMORY_DATA):  # in-memory arrays have no path
        data["data"]["source"] = _absolute(source, cwd)
    model = data.get("model", {})
    if model.get("weights"):
        model["weights"] = _absolute(model["weights"], cwd)
    file_part, sep, factory = str(model.get("name", "")).rpartition(":")
    if sep and file_part.endswith(".py"):
        model["name"] = f"{_absolute(file_part, cwd)}:{factory}"
    return validate_config(apply_overrides(data, changes), origin)
