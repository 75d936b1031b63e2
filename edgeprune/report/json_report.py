"""``report.json``: one row per artifact plus the run's context, in the schema of ``edgeprune.report.schema``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgeprune.fsutil import write_json_atomic
from edgeprune.report.schema import SCHEMA_VERSION, validate_report
from edgeprune.rundir.manifest import Manifest
from edgeprune.rundir.outcomes import FinetuneOutcome, TrainOutcome
from edgeprune.rundir.paths import REPORT_JSON


def _metrics(outcome: TrainOutcome | FinetuneOutcome | None) -> dict[str, Any] | None:
    test = outcome.test if outcome is not None else None
    return test.summary() if test is not None else None


def _gate_status(enabled: bool, rows: list[dict[str, Any]]) -> str:
    """passed | failed | not-checked (the gate is disabled) | not-run (nothing was verified)."""
    states = [r.get("gate_status", "not-run") for r in rows]
    if not rows or all(s == "not-run" for s in states):
        return "not-run"
    if not enabled or all(s in ("not-checked", "not-run") for s in states):
        return "not-checked"
    return "failed" if "rejected" in states else "passed"


def _prune_view(prune: Any) -> dict[str, Any] | None:
    if prune is None:
        return None
    return {k: v for k, v in prune.report_view().items() if k != "search"} or None


def _repair_step(att: dict[str, Any]) -> dict[str, Any]:
    metrics = att.get("metrics") or {}
    return {"rung": att["rung"], "step": att["step"], "status": att["status"], "reason": att.get("reason", ""),
            "file": att.get("file"), "quantization": (att.get("artifact") or {}).get("quantization"),
            "balanced_accuracy": metrics.get("balanced_accuracy")}  # fmt: skip


def repair_summaries(repairs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """report.json's view of verify's int8 repair ladders: every attempt, the rung that won and why."""
    out = []
    for name, record in repairs.items():
        steps = [_repair_step(a) for a in record.get("attempts", [])]
        won = next((s for s in steps if s["status"] == "passed"), None)
        if won is not None:
            why = f"rung {won['rung']} ({won['step']}) passed the gate on validation: {won['reason']}"
        else:
            why = record.get("skipped") or "no rung passed the gate on validation"
        out.append({"artifact": name, "selection_split": record.get("selection_split", "val"), "won": won,
                    "why": why, "attempts": steps})  # fmt: skip
    return out


def build_report(manifest: Manifest, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The stable, documented ``report.json`` (docs/report-json.md, edgeprune.report.schema)."""
    from edgeprune import __version__

    outcomes = manifest.outcomes(include_stale=True)
    data = {k: v for k, v in manifest.data.items() if k != "calibration_ids"}
    gate_enabled = bool(manifest.config.get("verify", {}).get("gate", True))
    verdicts = [r.get("gate_passed") for r in rows]
    verify = outcomes.verify
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": manifest.run_id,
        "created": manifest.created,
        "updated": manifest.updated,
        "edgeprune_version": __version__,
        "command": manifest.command,
        "config": manifest.config,
        "data": data,
        "calibration": {"n": len(manifest.data.get("calibration_ids", [])),
                        "ids_sha256": manifest.reproducibility.get("calibration_ids_sha256")},
        "prune": _prune_view(outcomes.prune),
        "search": getattr(outcomes.prune, "search", None) if outcomes.prune else None,
        "dense_test": _metrics(outcomes.train),
        "pruned_test": _metrics(outcomes.finetune),
        "artifacts": rows,
        "gate": {
            "enabled": gate_enabled,
            "passed": None if not rows or all(v is None for v in verdicts) else all(v is not False for v in verdicts),
            "status": _gate_status(gate_enabled, rows),
            "rejected": [r["name"] for r in rows if r.get("gate_passed") is False],
            "selection_split": verify.selection_split if verify else None,
            "test_reads": list(verify.test_reads) if verify else [],
            "power": verify.gate_power if verify else None,
            "repairs": repair_summaries(verify.repairs) if verify else [],
        },
        "stages": [{"name": s.name, "status": s.status, "seconds": s.seconds, "key": s.key} for s in manifest.stages],
        "versions": manifest.versions,
    }


def write_report_json(run_dir: Path, manifest: Manifest, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Build report.json, check it against its schema (a drift is a bug: it raises), and write it atomically."""
    report = build_report(manifest, rows)
    validate_report(report)
    write_json_atomic(Path(run_dir) / REPORT_JSON, report)
    return report
