"""The build pipeline: named stages, a manifest written after each, cache keys for resuming."""

from edgeprune.pipeline.runner import BuildOutcome, run_build

__all__ = ["BuildOutcome", "run_build"]
