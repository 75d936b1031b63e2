"""``manifest.json``: the single record of how a run's artifacts were made.

It is rewritten atomically after every stage, so after a crash or Ctrl-C it always describes what is really
on disk: a stage is ``done`` (or ``skipped``: reused from an earlier invocation) only once all its output files
exist with the recorded sha256; a stage left ``running`` or ``failed`` is rerun on the next invocation.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edgeprune.errors import EdgepruneError
from edgeprune.fsutil import read_json, write_json_atomic
from edgeprune.rundir.outcomes import StageOutcomes
from edgeprune.rundir.paths import MANIFEST

FINISHED = ("done", "skipped")


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class StageRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    # pending | running | done | skipped (reused) | failed | stale (an earlier stage ran again since: must rerun)
    status: str = "pending"
    key: str = ""
    started: str | None = None
    finished: str | None = None
    seconds: float | None = None
    outputs: dict[str, str] = Field(default_factory=dict, description="relative path -> sha256")
    summary: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None

    @property
    def finished_ok(self) -> bool:
        return self.status in FINISHED


class Invocation(BaseModel):
    """One command that worked on this run directory (a resumed run has several)."""

    model_config = ConfigDict(extra="forbid")

    command: list[str] = Field(default_factory=list)
    cwd: str = ""
    started: str = Field(default_factory=now)
    finished: str | None = None
    status: str = "running"  # running | done | failed | interrupted | killed (ended without a word)
    from_stage: str | None = None
    to_stage: str | None = None
    force: bool = False
    ran: list[str] = Field(default_factory=list)
    skipped: list[str] = Field(default_factory=list)


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: int = 1
    run_id: str
    created: str = Field(default_factory=now)
    updated: str = Field(default_factory=now)
    command: list[str] = Field(default_factory=list, description="the latest command (all of them: invocations)")
    config: dict[str, Any]
    versions: dict[str, str]
    inputs: dict[str, Any] = Field(default_factory=dict, description="sha256 of the dataset, weights, user code")
    preprocessing: dict[str, Any] = Field(default_factory=dict)
    data: dict[str, Any] = Field(default_factory=dict, description="split sizes, class counts, calibration ids")
    reproducibility: dict[str, Any] = Field(
        default_factory=dict, description="seed, split fingerprints, calibration-id hash, torch threads/determinism"
    )
    invocations: list[Invocation] = Field(default_factory=list)
    stages: list[StageRecord] = Field(default_factory=list)

    def stage(self, name: str) -> StageRecord | None:
        return next((s for s in self.stages if s.name == name), None)

    def upsert(self, record: StageRecord) -> None:
        """Replace the record of the same stage in place (keeps pipeline order), or append it."""
        for i, s in enumerate(self.stages):
            if s.name == record.name:
                self.stages[i] = record
                return
        self.stages.append(record)

    def recorded_outputs(self) -> dict[str, str]:
        """relative path -> sha256 of every output vouched for by a finished stage."""
        out: dict[str, str] = {}
        for s in self.stages:
            if s.finished_ok:
                out.update(s.outputs)
        return out

    def outcomes(self, include_stale: bool = False) -> StageOutcomes:
        """The typed outcome of every finished stage (and, with ``include_stale``, of stale ones too)."""
        return StageOutcomes.from_summaries({s.name: s.summary for s in self.stages
                                             if s.summary and (s.finished_ok or include_stale)})

    def save(self, run_dir: Path) -> None:
        self.updated = now()
        write_json_atomic(Path(run_dir) / MANIFEST, self.model_dump(mode="json"))


def load_manifest(run_dir: str | Path) -> Manifest:
    path = Path(run_dir) / MANIFEST
    if not path.is_file():
        raise EdgepruneError(f"{path} does not exist", "give a run directory written by 'edgeprune build'")
    try:
        return Manifest.model_validate(read_json(path))
    except (ValueError, ValidationError) as exc:
        first = str(exc).strip().splitlines()[0][:200]
        raise EdgepruneError(f"{path} is not a valid edgeprune manifest ({first})",
                             "point at a run directory written by 'edgeprune build', or rebuild it with --force",
                             ) from None


def cache_key(*parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
