"""``manifest.json``: the single record of how a run's artifacts were made.

It is rewritten atomically after every stage, so after a crash or Ctrl-C it always describes what is really
on disk: a stage is ``done`` (or ``skipped``: reused from an earlier invocation) only once all its output files
exist with the recorded sha256; a stage left ``running`` or ``failed`` is rerun on the next invocation.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edgeprune.fsutil import read_json, sha256_file, write_json_atomic

MANIFEST = "manifest.json"
FINISHED = ("done", "skipped")
OUTPUT_DIRS = ("models", "artifacts")
LOCK_FILE = ".edgeprune.lock"


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

    def summaries(self) -> dict[str, dict[str, Any]]:
        return {s.name: s.summary for s in self.stages if s.summary}

    def save(self, run_dir: Path) -> None:
        self.updated = now()
        write_json_atomic(Path(run_dir) / MANIFEST, self.model_dump(mode="json"))


def load_manifest(run_dir: str | Path) -> Manifest:
    from edgeprune.errors import EdgepruneError

    path = Path(run_dir) / MANIFEST
    if not path.is_file():
        raise EdgepruneError(f"{path} does not exist", "give a run directory written by 'edgeprune build'")
    try:
        return Manifest.model_validate(read_json(path))
    except (ValueError, ValidationError) as exc:
        first = str(exc).strip().splitlines()[0][:200]
        raise EdgepruneError(f"{path} is not a valid edgeprune manifest ({first})",
                             "point at a run directory written by 'edgeprune build', or rebuild it with --force") from None


def cache_key(*parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


# --- run-directory hygiene: only what a finished stage records is trusted --------------------------------------


def digest(path: Path) -> str:
    """sha256 of a file, or of a directory tree (e.g. an .mlpackage): relative names and file hashes."""
    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    h = hashlib.sha256()
    for p in sorted(q for q in path.rglob("*") if q.is_file()):
        h.update(f"{p.relative_to(path).as_posix()}\0{sha256_file(p)}\n".encode())
    return h.hexdigest()


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
def interrupts_deferred() -> Iterator[None]:
    """Ignore Ctrl-C while the manifest records an interruption (a second Ctrl-C must not lose it)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class InterruptGuard:
    """Make Ctrl-C stop a build even when Python delivers it where exceptions are swallowed.

    A KeyboardInterrupt raised inside a garbage-collector or weakref callback or a ``__del__`` (which converters
    such as JAX trigger all the time) is printed as "Exception ignored" and lost. So the handler raises it and
    re-sends SIGINT every 0.5 s until the runner calls ``seen()``; the runner also checks ``pending`` after
    each stage. Installed only in the main thread and only over Python's default handler.
    """

    def __init__(self) -> None:
        self.pending = False
        self._previous: Any = None
        self._lock = threading.Lock()

    def __enter__(self) -> InterruptGuard:
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.pending = True
        timer = threading.Timer(0.5, self._redeliver)
        timer.daemon = True
        timer.start()
        raise KeyboardInterrupt

    def _redeliver(self) -> None:
        with self._lock:
            if self.pending:
                os.kill(os.getpid(), signal.SIGINT)

    def seen(self) -> None:
        with self._lock:
            self.pending = False

    def __exit__(self, *exc: Any) -> None:
        self.seen()
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


@contextmanager
def run_dir_lock(run_dir: Path) -> Iterator[None]:
    """One build per run directory at a time (released by the OS even if the process is killed)."""
    from edgeprune.errors import EdgepruneError

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
