"""The run directory as a type: its layout, ``manifest.json``, the typed stage outcomes recorded in it, the
artifact rows joined from them, and the build config rebuilt from it.

It sits below the pipeline, the report, the package builder and the CLI, which all read it; it imports none
of them.
"""

from __future__ import annotations

from edgeprune.rundir.manifest import Invocation, Manifest, StageRecord, load_manifest
from edgeprune.rundir.outcomes import StageOutcomes

__all__ = ["Invocation", "Manifest", "StageOutcomes", "StageRecord", "load_manifest"]
