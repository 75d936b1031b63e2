"""``report.json``: one row per artifact plus the run's context, in the schema of ``edgeprune.report.schema``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported lazily: edgeprune.pipeline imports this module
    from edgeprune.pipeline.manifest import Manifest

REPORT_SCHEMA_VERSION = 1


def artifact_table(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """``artifact_rows`` plus the gate details, numeric drift and notes that report.json and JUnit need."""
    from edgeprune.pipeline.summary import artifact_rows

    rows = artifact_rows(results)
    verify = results.get("verify", {}).get("artifacts", {})
    exported = {a["name"]: a for a in results.get("export", {}).get("artifacts", [])}
    for row in rows:
        v = verify.get(row["name"], {})
        delta = v.get("vs_dense_float")
        row["gate"] = v.get("gate")
        row["drift"] = v.get("vs_torch")
        row["vs_dense_float"] = None if not delta else {
            "balanced_accuracy": delta.get("balanced_accuracy"), "accuracy": delta.get("accuracy"),
            "per_class_sensitivity": delta.get("per_class_sensitivity"), "confidence": delta.get("confidence"),
        }
        row["notes"] = list(exported.get(row["name"], {}).get("notes", [])) + list(v.get("notes", []))
    return rows


def build_report(manifest: Manifest, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The stable, documented ``report.json`` (docs/report-json.md, edgeprune.report.schema)."""
    from edgeprune import __version__

    results = manifest.summaries()
    data = {k: v for k, v in manifest.data.items() if k != "calibration_ids"}
    gate_enabled = bool(manifest.config.get("verify", {}).get("gate", True))
    verdicts = [r.get("gate_passed") for r in rows]
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "run_id": manifest.run_id,
        "created": manifest.created,
        "updated": manifest.updated,
        "edgeprune_version": __version__,
        "command": manifest.command,
        "config": manifest.config,
        "data": data,
        "calibration": {"n": len(manifest.data.get("calibration_ids", [])),
                        "ids_sha256": manifest.reproducibility.get("calibration_ids_sha256")},
        "prune": {k: v for k, v in results.get("prune", {}).items() if k != "test_before_finetune"} or None,
        "dense_test": results.get("train", {}).get("test"),
        "pruned_test": results.get("finetune", {}).get("test"),
        "artifacts": rows,
        "gate": {
            "enabled": gate_enabled,
            "passed": None if not rows or all(v is None for v in verdicts) else all(v is not False for v in verdicts),
            "rejected": [r["name"] for r in rows if r.get("gate_passed") is False],
        },
        "stages": [{"name": s.name, "status": s.status, "seconds": s.seconds, "key": s.key} for s in manifest.stages],
        "versions": manifest.versions,
    }
