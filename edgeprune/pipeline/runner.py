"""Runs the stages in order, skipping finished ones whose cache key and outputs are unchanged.

Crash safety: every file is written atomically (temp name, then rename), the manifest is rewritten after
each stage, and a file under ``models/`` or ``artifacts/`` counts only when a finished stage records its
sha256. After an interruption (Ctrl-C, a kill, a crash) the next invocation removes leftover temp files and
unrecorded outputs of the unfinished stage, then resumes from the first stage that is not finished.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from edgeprune.config import BuildConfig
from edgeprune.errors import EdgepruneError
from edgeprune.pipeline.context import BuildContext
from edgeprune.pipeline.interrupts import InterruptGuard, interrupts_deferred
from edgeprune.pipeline.stages import STAGE_NAMES, STAGES, Stage
from edgeprune.pipeline.versions import tool_versions
from edgeprune.report.json_report import write_report_json
from edgeprune.rundir.artifacts import artifact_rows
from edgeprune.rundir.files import (
    digest,
    interrupted_since,
    outputs_intact,
    remove_output,
    run_dir_lock,
    sweep_temp_files,
    sweep_unrecorded,
)
from edgeprune.rundir.manifest import Invocation, Manifest, StageRecord, cache_key, load_manifest, now
from edgeprune.rundir.outcomes import StageOutcomes
from edgeprune.rundir.paths import MANIFEST, REPORT_HTML
from edgeprune.search.noise import stderr_to

__all__ = ["BuildOutcome", "run_build"]

THIRD_PARTY_LOG = "logs/third-party.log"  # stderr of the stages: torch/TFLite/absl warnings and info lines


@dataclass
class BuildOutcome:
    run_dir: Path
    manifest: Manifest
    rows: list[dict[str, Any]]
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    outcomes: StageOutcomes = field(default_factory=StageOutcomes)  # of the stages run or reused

    @property
    def rejected(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r.get("gate_passed") is False]


def _input_hashes(ctx: BuildContext, stage: Stage) -> dict[str, str]:
    out = {}
    for rel in stage.input_files(ctx):
        p = ctx.path(rel)
        out[rel] = digest(p) if p.exists() else "missing"
    return out


def _sha256_array(*arrays: Any) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def reproducibility_info(ctx: BuildContext) -> dict[str, Any]:
    """What a rebuild must reproduce or explain: seed, exact split contents, calibration ids, torch settings."""
    import torch

    data = ctx.data
    splits = {name: {"n": int(len(part.y)), "sha256": _sha256_array(part.x.numpy(), part.y.numpy())}
              for name, part in (("train", data.train), ("val", data.val),
                                 ("test", data.test.read("provenance: sha256 of the split")))}
    return {
        "seed": ctx.cfg.seed,
        "splits": splits,
        "calibration_ids_sha256": _sha256_array(np.asarray(data.calib_ids, dtype=np.int64)),
        "torch_threads": torch.get_num_threads(),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "cpu_count": os.cpu_count(),
    }


def _previous_manifest(run_dir: Path, force: bool) -> Manifest | None:
    if not (run_dir / MANIFEST).is_file():
        return None
    try:
        return load_manifest(run_dir)
    except EdgepruneError:
        if force:  # an unreadable manifest is simply replaced when everything is rerun anyway
            return None
        raise


def _start_manifest(ctx: BuildContext, previous: Manifest | None, command: list[str]) -> Manifest:
    cfg, data = ctx.cfg, ctx.data
    inputs: dict[str, Any] = {"dataset": {"source": data.info["source"], "sha256": data.info["source_sha256"]}}
    if cfg.model.weights:
        inputs["weights"] = {"path": cfg.model.weights, "sha256": digest(Path(cfg.model.weights))}
    from edgeprune.models import model_spec_sha256

    code_sha = model_spec_sha256(cfg.model.name)
    if code_sha:
        inputs["model_code"] = {"spec": cfg.model.name, "sha256": code_sha}
    manifest = Manifest(
        run_id=ctx.run_dir.name, command=command, config=cfg.model_dump(mode="json"), versions=tool_versions(),
        inputs=inputs, preprocessing=data.contract.model_dump(mode="json"), data=data.info,
        reproducibility=reproducibility_info(ctx),
        stages=previous.stages if previous else [],
        invocations=previous.invocations if previous else [],
    )
    if previous:
        manifest.created = previous.created
    return manifest


def run_build(cfg: BuildConfig, run_dir: Path, *, from_stage: str | None = None, to_stage: str | None = None,
              force: bool = False,
              console: Console | None = None, command: list[str] | None = None) -> BuildOutcome:
    """Run (or resume) a build in ``run_dir``; the manifest is rewritten after every stage."""
    for given in (from_stage, to_stage):
        if given is not None and given not in STAGE_NAMES:
            raise EdgepruneError(f"unknown stage '{given}'", f"stages are: {', '.join(STAGE_NAMES)}")
    last = STAGE_NAMES.index(to_stage) if to_stage else len(STAGE_NAMES) - 1
    if from_stage and STAGE_NAMES.index(from_stage) > last:
        raise EdgepruneError(f"--from {from_stage} comes after the last stage '{to_stage}'",
                             "choose a first stage at or before the last one")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with run_dir_lock(run_dir), InterruptGuard() as guard:
        return _run_locked(cfg, run_dir, from_stage, last, force, console or Console(), command or [], to_stage,
                           guard)


def _run_locked(cfg: BuildConfig, run_dir: Path, from_stage: str | None, last: int, force: bool,
                console: Console, command: list[str], to_stage: str | None, guard: InterruptGuard) -> BuildOutcome:
    ctx = BuildContext(cfg=cfg, run_dir=run_dir, console=console)
    previous = _previous_manifest(run_dir, force)
    with ctx.console.status("preparing data"):
        manifest = _start_manifest(ctx, previous, command)
    from edgeprune.pipeline.verification import warn_gate_power

    warn_gate_power(ctx)  # the data sizes are known now: say which gate limits they cannot certify
    for earlier in manifest.invocations:  # we hold the lock: an invocation still 'running' was killed
        if earlier.status == "running":
            earlier.status = "killed"
    invocation = Invocation(command=command, cwd=os.getcwd(), from_stage=from_stage, to_stage=to_stage, force=force)
    manifest.invocations.append(invocation)
    # leftovers of an interrupted invocation: temp files, and what its unfinished stage had written
    sweep_temp_files(run_dir)
    since = interrupted_since(manifest)
    removed = sweep_unrecorded(run_dir, manifest, since) if since is not None else []
    if removed:
        ctx.console.print(f"[yellow]removed {len(removed)} unrecorded output(s) of an interrupted run: "
                          f"{', '.join(removed[:4])}[/yellow]")
    manifest.save(run_dir)
    outcome = BuildOutcome(run_dir=run_dir, manifest=manifest, rows=[])
    # every stage reads the dataset (and maybe user weights/code): their hashes belong in every key
    external = {k: v.get("sha256") for k, v in manifest.inputs.items()}
    rerun_from = STAGE_NAMES.index(from_stage) if from_stage else len(STAGE_NAMES)
    for index, stage in enumerate(STAGES[: last + 1]):
        key = cache_key(stage.name, stage.params(ctx), _input_hashes(ctx, stage), manifest.versions, external)
        old = manifest.stage(stage.name)
        reusable = (not force and index < rerun_from and old is not None and old.finished_ok
                    and old.key == key and outputs_intact(run_dir, old.outputs))
        if reusable:
            assert old is not None
            ctx.outcomes.record(stage.name, old.summary)
            old.status = "skipped"
            outcome.skipped.append(stage.name)
            invocation.skipped.append(stage.name)
            ctx.console.print(f"[bold]{index + 1}/{len(STAGES)} {stage.title}[/bold] [green]unchanged, skipped[/green]")
            continue
        ctx.console.print(f"[bold]{index + 1}/{len(STAGES)} {stage.title}[/bold]")
        sweep_temp_files(run_dir)
        for rel in old.outputs if old else {}:  # about to be replaced: never leave a stale file that looks new
            remove_output(run_dir / rel)
        record = StageRecord(name=stage.name, status="running", key=key, started=now())
        manifest.upsert(record)
        manifest.save(run_dir)
        t0, wall0 = time.perf_counter(), time.time()
        try:
            with stderr_to(run_dir / THIRD_PARTY_LOG):  # converter/runtime chatter stays off the console
                result, outputs = stage.run(ctx)
        except BaseException as exc:
            guard.seen()
            with interrupts_deferred():
                interrupted = isinstance(exc, KeyboardInterrupt)
                record.status, record.finished = "failed", now()
                record.error = "interrupted (KeyboardInterrupt)" if interrupted else f"{type(exc).__name__}: {exc}"
                invocation.status, invocation.finished = ("interrupted" if interrupted else "failed"), now()
                sweep_temp_files(run_dir)
                sweep_unrecorded(run_dir, manifest, wall0 - 1.0)
                manifest.save(run_dir)
            raise
        record.status, record.finished, record.seconds = "done", now(), round(time.perf_counter() - t0, 2)
        record.summary = result.summary()
        record.outputs = {rel: digest(ctx.path(rel)) for rel in outputs}
        ctx.outcomes.keep(stage.name, result)
        invocation.ran.append(stage.name)
        if guard.pending:  # Ctrl-C was swallowed somewhere inside the stage: keep its finished work, stop here
            guard.seen()
            invocation.status, invocation.finished = "interrupted", now()
            manifest.save(run_dir)
            raise KeyboardInterrupt
        manifest.save(run_dir)
        outcome.ran.append(stage.name)
        # later stages depend on this one: never reuse them once it ran again
        rerun_from = min(rerun_from, index + 1)
    if invocation.ran:  # stages after the last one run here depend on it: their records no longer hold
        for later in STAGES[last + 1:]:
            stale = manifest.stage(later.name)
            if stale is not None and stale.finished_ok:
                stale.status = "stale"
    outcome.ran = list(invocation.ran)
    outcome.rows, outcome.outcomes = artifact_rows(ctx.outcomes), ctx.outcomes
    invocation.status, invocation.finished = "done", now()
    manifest.save(run_dir)
    write_report_json(run_dir, manifest, outcome.rows)
    _write_html(ctx, run_dir)
    return outcome


def _write_html(ctx: BuildContext, run_dir: Path) -> None:
    """report.html is a view of manifest + report.json: a plotting problem must not fail a finished build."""
    from edgeprune.report import write_html_report

    try:
        write_html_report([run_dir], run_dir / REPORT_HTML)
    except Exception as exc:  # noqa: BLE001 - reported, and `edgeprune report RUN_DIR` can retry
        ctx.console.print(f"[yellow]warning: report.html was not written ({type(exc).__name__}: {exc}); "
                          f"retry with: edgeprune report {run_dir}[/yellow]")
