"""Run-directory hygiene: only what a finished stage records is trusted; leftovers of a killed process go."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from edgeprune.artifacts.files import artifact_digest as digest  # one digest for exports and the manifest
from edgeprune.errors import EdgepruneError
from edgeprune.rundir.manifest import Manifest
from edgeprune.rundir.paths import LOCK_FILE, OUTPUT_DIRS


def outputs_intact(run_dir: Path, outputs: dict[str, str]) -> bool:
    return all((run_dir / rel).exists() and digest(run_dir / rel) == sha for rel, sha in outputs.items())


def _is_temp(name: str) -> bool:
    # fsutil.atomic_path writes ".<name>.<random>.part", exporters work in ".<name>.<random>.export"
    return name.startswith(".") and (name.endswith(".part") or name.endswith(".export"))


def remove_output(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def sweep_temp_files(run_dir: Path) -> list[str]:
    """Delete temp files/dirs that a killed process left behind (never complete, never referenced)."""
    removed = []
    for folder in (run_dir, *(run_dir / d for d in OUTPUT_DIRS)):
        if folder.is_dir():
            for entry in folder.iterdir():
                if _is_temp(entry.name):
                    remove_output(entry)
                    removed.append(os.path.relpath(entry, run_dir))
    return removed


def sweep_unrecorded(run_dir: Path, manifest: Manifest, newer_than: float) -> list[str]:
    """Delete what an interrupted stage had written so far: outputs no finished stage vouches for that were
    written after ``newer_than`` (a POSIX time: when that stage started). Older files are left alone."""
    keep = set(manifest.recorded_outputs())
    removed = []
    for d in OUTPUT_DIRS:
        folder = run_dir / d
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            rel = f"{d}/{entry.name}"
            if not entry.name.startswith(".") and rel not in keep and entry.lstat().st_mtime >= newer_than:
                remove_output(entry)
                removed.append(rel)
    return removed


def interrupted_since(manifest: Manifest) -> float | None:
    """When the earliest stage still marked running/failed started (POSIX time), or None if there is none."""
    starts = [datetime.fromisoformat(s.started).timestamp() for s in manifest.stages
              if s.status in ("running", "failed") and s.started]
    return min(starts) - 1.0 if starts else None  # ``started`` has whole seconds


@contextmanager
def run_dir_lock(run_dir: Path) -> Iterator[None]:
    """One build per run directory at a time (released by the OS even if the process is killed)."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks, run unguarded
        yield
        return
    with open(run_dir / LOCK_FILE, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise EdgepruneError(f"another edgeprune process is working in {run_dir}",
                                 "wait for it to finish, or use another --out directory") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
