"""Runs the stages in order, skipping finished ones whose cache key and outputs are unchanged."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from edgeprune.config import BuildConfig
from edgeprune.errors import EdgepruneError
from edgeprune.fsutil import sha256_file, write_json_atomic
from edgeprune.pipeline.context import BuildContext
from edgeprune.pipeline.manifest import MANIFEST, Manifest, StageRecord, cache_key, load_manifest, now
from edgeprune.pipeline.stages import STAGE_NAMES, STAGES, Stage
from edgeprune.pipeline.summary import artifact_rows
from edgeprune.pipeline.versions import tool_versions

REPORT_JSON = "report.json"


@dataclass
class BuildOutcome:
    run_dir: Path
    manifest: Manifest
    rows: list[dict[str, Any]]
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def rejected(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r.get("gate_passed") is False]


def _input_hashes(ctx: BuildContext, stage: Stage) -> dict[str, str]:
    out = {}
    for rel in stage.input_files(ctx):
        p = ctx.path(rel)
        out[rel] = sha256_file(p) if p.is_file() else "missing"
    return out


def _outputs_intact(ctx: BuildContext, record: StageRecord) -> bool:
    return all(ctx.path(rel).is_file() and sha256_file(ctx.path(rel)) == sha for rel, sha in record.outputs.items())


def _start_manifest(ctx: BuildContext, command: list[str]) -> Manifest:
    cfg, data = ctx.cfg, ctx.data
    previous = load_manifest(ctx.run_dir) if (ctx.run_dir / MANIFEST).is_file() else None
    inputs: dict[str, Any] = {"dataset": {"source": data.info["source"], "sha256": data.info["source_sha256"]}}
    if cfg.model.weights:
        inputs["weights"] = {"path": cfg.model.weights, "sha256": sha256_file(cfg.model.weights)}
    from edgeprune.models import model_spec_sha256

    code_sha = model_spec_sha256(cfg.model.name)
    if code_sha:
        inputs["model_code"] = {"spec": cfg.model.name, "sha256": code_sha}
    manifest = Manifest(
        run_id=ctx.run_dir.name, command=command, config=cfg.model_dump(mode="json"), versions=tool_versions(),
        inputs=inputs, preprocessing=data.contract.model_dump(mode="json"), data=data.info,
        stages=previous.stages if previous else [],
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
    run_dir.mkdir(parents=True, exist_ok=True)
    ctx = BuildContext(cfg=cfg, run_dir=run_dir, console=console or Console())
    with ctx.console.status("preparing data"):
        manifest = _start_manifest(ctx, command or [])
    manifest.save(run_dir)
    outcome = BuildOutcome(run_dir=run_dir, manifest=manifest, rows=[])
    versions = manifest.versions
    rerun_from = STAGE_NAMES.index(from_stage) if from_stage else len(STAGE_NAMES)
    for index, stage in enumerate(STAGES[: last + 1]):
        key = cache_key(stage.name, stage.params(ctx), _input_hashes(ctx, stage), versions)
        old = manifest.stage(stage.name)
        reusable = (not force and index < rerun_from and old is not None and old.status in ("done", "skipped")
                    and old.key == key and _outputs_intact(ctx, old))
        if reusable:
            assert old is not None
            ctx.results[stage.name] = old.summary
            old.status = "skipped"
            outcome.skipped.append(stage.name)
            ctx.console.print(f"[bold]{index + 1}/{len(STAGES)} {stage.title}[/bold] [green]unchanged, skipped[/green]")
            continue
        ctx.console.print(f"[bold]{index + 1}/{len(STAGES)} {stage.title}[/bold]")
        record = StageRecord(name=stage.name, status="running", key=key, started=now())
        manifest.upsert(record)
        manifest.save(run_dir)
        t0 = time.perf_counter()
        try:
            summary, outputs = stage.run(ctx)
        except BaseException as exc:
            record.status, record.error, record.finished = "failed", f"{type(exc).__name__}: {exc}", now()
            manifest.save(run_dir)
            raise
        record.status, record.finished, record.seconds = "done", now(), round(time.perf_counter() - t0, 2)
        record.summary = summary
        record.outputs = {rel: sha256_file(ctx.path(rel)) for rel in outputs}
        ctx.results[stage.name] = summary
        manifest.save(run_dir)
        outcome.ran.append(stage.name)
        # later stages depend on this one: never reuse them once it ran again
        rerun_from = min(rerun_from, index + 1)
    outcome.rows = artifact_rows(ctx.results)
    write_json_atomic(run_dir / REPORT_JSON, build_report(manifest, outcome.rows))
    return outcome


def build_report(manifest: Manifest, rows: list[dict[str, Any]]) -> dict[str, Any]:
    results = {s.name: s.summary for s in manifest.stages}
    return {
        "schema_version": 1,
        "run_id": manifest.run_id,
        "created": manifest.created,
        "data": {k: v for k, v in manifest.data.items() if k != "calibration_ids"},
        "prune": {k: v for k, v in results.get("prune", {}).items() if k != "test_before_finetune"},
        "dense_test": results.get("train", {}).get("test"),
        "pruned_test": results.get("finetune", {}).get("test"),
        "artifacts": rows,
        "stages": [{"name": s.name, "status": s.status, "seconds": s.seconds} for s in manifest.stages],
        "versions": manifest.versions,
    }
