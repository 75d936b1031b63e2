"""report.json follows its documented schema (pydantic models and docs/report-json.md agree)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from edgeprune.report.schema import SCHEMA_VERSION, ArtifactRow, ReportJson, validate_report

DOC = Path(__file__).resolve().parents[2] / "docs" / "report-json.md"


def test_report_json_of_a_real_build_validates(tiny_run_dir: Path) -> None:
    raw = json.loads((tiny_run_dir / "report.json").read_text())
    report = validate_report(raw)
    assert report.schema_version == SCHEMA_VERSION
    manifest = json.loads((tiny_run_dir / "manifest.json").read_text())
    exported = next(s for s in manifest["stages"] if s["name"] == "export")["summary"]["artifacts"]
    assert [a.name for a in report.artifacts] == [a["name"] for a in exported]
    assert [s.name for s in report.stages] == ["train", "prune", "finetune", "export", "verify", "profile"]
    rejected = [a.name for a in report.artifacts if a.gate_passed is False]
    assert report.gate.rejected == rejected and report.gate.passed is (not rejected)
    for row in report.artifacts:
        assert row.gate is not None and row.gate.passed is row.gate_passed
        assert row.drift is not None and row.drift.max_abs == row.max_abs_logit_error
        assert len(row.vs_dense_float.per_class_sensitivity) == len(report.data.class_names)
        assert row.latency_p50_ms and all(v > 0 for v in row.latency_p50_ms.values())
    assert report.calibration.n == len(manifest["data"]["calibration_ids"]) and report.calibration.ids_sha256
    assert "calibration_ids" not in raw["data"]  # ids live in the manifest, the report carries their hash


def test_schema_rejects_drift(tiny_run_dir: Path) -> None:
    raw = json.loads((tiny_run_dir / "report.json").read_text())
    with pytest.raises(ValidationError):
        validate_report({**raw, "surprise": 1})
    with pytest.raises(ValidationError):
        validate_report({**raw, "schema_version": 2})
    row = dict(raw["artifacts"][0])
    del row["size_bytes"]
    with pytest.raises(ValidationError):
        ArtifactRow.model_validate(row)


def test_docs_describe_every_field() -> None:
    text = DOC.read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([a-z0-9_]+)`", text, flags=re.M))
    for model in (ReportJson, ArtifactRow):
        missing = set(model.model_fields) - documented
        assert not missing, f"{model.__name__} fields missing from {DOC.name}: {sorted(missing)}"
    assert f"Current version: **{SCHEMA_VERSION}**" in text


def test_report_json_is_checked_against_the_schema_when_written(tiny_run_dir: Path, tmp_path: Path) -> None:
    from edgeprune.report.json_report import build_report, write_report_json
    from edgeprune.rundir.artifacts import artifact_rows
    from edgeprune.rundir.manifest import load_manifest

    manifest = load_manifest(tiny_run_dir)
    rows = artifact_rows(manifest.outcomes())
    written = write_report_json(tmp_path, manifest, rows)
    assert written["schema_version"] == SCHEMA_VERSION
    assert json.loads((tmp_path / "report.json").read_text()) == json.loads(json.dumps(written))
    assert build_report(manifest, rows)["artifacts"] == rows
    drifted = [{**rows[0], "surprise": 1}, *rows[1:]]
    with pytest.raises(ValidationError):
        write_report_json(tmp_path / "other", manifest, drifted)
    assert not (tmp_path / "other").exists()  # nothing written when the report does not match its schema
