"""``manifest.json``: the single record of how a run's artifacts were made."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from edgeprune.fsutil import read_json, write_json_atomic

MANIFEST = "manifest.json"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class StageRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    status: str = "pending"  # pending | running | done | skipped | failed
    key: str = ""
    started: str | None = None
    finished: str | None = None
    seconds: float | None = None
    outputs: dict[str, str] = Field(default_factory=dict, description="relative path -> sha256")
    summary: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: int = 1
    run_id: str
    created: str = Field(default_factory=now)
    updated: str = Field(default_factory=now)
    command: list[str] = Field(default_factory=list)
    config: dict[str, Any]
    versions: dict[str, str]
    inputs: dict[str, Any] = Field(default_factory=dict, description="sha256 of the dataset, weights, user code")
    preprocessing: dict[str, Any] = Field(default_factory=dict)
    data: dict[str, Any] = Field(default_factory=dict, description="split sizes, class counts, calibration ids")
    stages: list[StageRecord] = Field(default_factory=list)

    def stage(self, name: str) -> StageRecord | None:
        return next((s for s in self.stages if s.name == name), None)

    def upsert(self, record: StageRecord) -> None:
        self.stages = [s for s in self.stages if s.name != record.name] + [record]

    def save(self, run_dir: Path) -> None:
        self.updated = now()
        write_json_atomic(run_dir / MANIFEST, self.model_dump(mode="json"))


def load_manifest(run_dir: str | Path) -> Manifest:
    from edgeprune.errors import EdgepruneError

    path = Path(run_dir) / MANIFEST
    if not path.is_file():
        raise EdgepruneError(f"{path} does not exist", "give a run directory written by 'edgeprune build'")
    return Manifest.model_validate(read_json(path))


def cache_key(*parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
