"""The run directory type: typed outcomes round-trip the manifest, one config rebuild, and it imports nothing above."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from edgeprune.errors import EdgepruneError
from edgeprune.rundir.artifacts import artifact_rows
from edgeprune.rundir.config import config_from_manifest
from edgeprune.rundir.manifest import load_manifest
from edgeprune.rundir.outcomes import StageOutcomes
from tests.report.tiny import tiny_run

RUNDIR = Path(__file__).resolve().parents[2] / "edgeprune" / "rundir"
ABOVE = ("edgeprune.pipeline", "edgeprune.report", "edgeprune.package", "edgeprune.cli", "edgeprune.server")


@pytest.fixture(scope="session")
def tiny_run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_run(tmp_path_factory)


def test_every_stage_summary_survives_the_typed_outcome_unchanged(tiny_run_dir: Path) -> None:
    manifest = load_manifest(tiny_run_dir)
    outcomes = StageOutcomes()
    for record in manifest.stages:
        assert record.finished_ok
        outcome = outcomes.record(record.name, record.summary)
        assert json.dumps(outcome.summary()) == json.dumps(record.summary), record.name  # same keys, same order
    assert outcomes.train and outcomes.train.trained is True and outcomes.train.test
    assert outcomes.prune and 0.0 < (outcomes.prune.achieved_reduction or 0.0) < 1.0
    names = [a.name for a in outcomes.exported]
    assert names and set(names) <= set(outcomes.verified)
    assert {m["artifact_name"] for m in outcomes.measurements} <= set(names)
    with pytest.raises(KeyError):
        outcomes.keep("nope", outcomes.train)


def test_artifact_rows_are_report_json_rows(tiny_run_dir: Path) -> None:
    report = json.loads((tiny_run_dir / "report.json").read_text())
    rows = artifact_rows(load_manifest(tiny_run_dir).outcomes())
    assert json.loads(json.dumps(rows)) == report["artifacts"]
    assert artifact_rows(StageOutcomes()) == []


def test_config_from_manifest_applies_changes_and_fixes_relative_paths(tiny_run_dir: Path, tmp_path: Path) -> None:
    manifest = load_manifest(tiny_run_dir).model_copy(deep=True)
    (tmp_path / "w.pt").write_bytes(b"x")
    manifest.config["model"]["weights"] = "w.pt"
    manifest.invocations[-1].cwd = str(tmp_path)
    cfg = config_from_manifest(manifest, {"profile.runs": 7, "export.precisions": ["fp32"]})
    assert cfg.model.weights == str(tmp_path / "w.pt")
    assert cfg.profile.runs == 7 and cfg.export.precisions == ["fp32"]
    assert manifest.config["profile"]["runs"] != 7  # the manifest itself is left as recorded
    with pytest.raises(EdgepruneError, match="prune"):
        config_from_manifest(manifest, {"prune.flops_reduction": "lots"})


def test_the_run_directory_imports_nothing_above_it() -> None:
    for path in RUNDIR.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            bad = [n for n in names if n.startswith(ABOVE)]
            assert not bad, f"{path.name} imports {bad}"
