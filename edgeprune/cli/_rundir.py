"""Re-running stages of an existing run directory with a few settings changed."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from edgeprune.config import BuildConfig
from edgeprune.rundir.config import config_from_manifest
from edgeprune.rundir.manifest import load_manifest


def config_of(run_dir: Path, changes: dict[str, Any]) -> BuildConfig:
    """The run's resolved config with ``changes`` (dotted keys) applied."""
    return config_from_manifest(load_manifest(run_dir), changes, f"settings for {run_dir}")


def rerun(run_dir: Path, changes: dict[str, Any], first: str, last: str) -> Any:
    from edgeprune.cli._common import console
    from edgeprune.pipeline import run_build

    cfg = config_of(run_dir, changes)
    return run_build(cfg, run_dir, from_stage=first, to_stage=last, console=console,
                     command=["edgeprune", *sys.argv[1:]])
