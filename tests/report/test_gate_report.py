"""The gate in report.json, report.html and the console: its power table, the one test read, a disabled gate."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from rich.console import Console

from edgeprune.api import rerun
from edgeprune.cli import _common
from edgeprune.report.schema import validate_report
from tests.report._html import parse


def test_report_shows_what_the_gate_can_certify_and_the_single_test_read(tiny_run_dir: Path) -> None:
    report = json.loads((tiny_run_dir / "report.json").read_text())
    validate_report(report)
    gate = report["gate"]
    assert gate["selection_split"] == "val"
    assert len(gate["test_reads"]) == 1 and gate["test_reads"][0].startswith("final verdict")
    power = gate["power"]
    names = report["data"]["class_names"]
    assert set(power["splits"]) == {"val", "test"}
    for split, sp in power["splits"].items():
        counts = report["data"]["class_counts"][split]
        assert [c["name"] for c in sp["classes"]] == names and [c["n"] for c in sp["classes"]] == counts
        for c in sp["classes"]:
            assert c["certifiable"] is (c["one_flip_ub_pp"] is not None
                                        and c["one_flip_ub_pp"] <= power["limits"]["max_class_sensitivity_drop"])
    summary = parse((tiny_run_dir / "report.html").read_text(encoding="utf-8")).sections["summary"].text
    assert "What the gate can certify" in summary and "1 lost prediction" in summary
    assert "The test split is read once, for the final verdict" in summary
    rare = min(power["splits"]["test"]["classes"], key=lambda c: c["n"])
    assert f"{rare['one_flip_ub_pp']:.1f} pp" in summary


def test_a_disabled_gate_is_reported_as_not_checked_everywhere(tiny_run_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "nogate"
    shutil.copytree(tiny_run_dir, run)
    result = rerun(run, "verify", console=Console(quiet=True), **{"verify.gate": False})
    report = json.loads((run / "report.json").read_text())
    assert report["gate"]["enabled"] is False and report["gate"]["passed"] is None
    assert report["gate"]["status"] == "not-checked" and report["gate"]["rejected"] == []
    verified = [r for r in report["artifacts"] if r["gate"] is not None]
    assert verified and all(r["gate_passed"] is None and r["gate_status"] == "not-checked" for r in verified)
    assert all(r["gate"]["passed"] is None and r["gate"]["status"] == "not-checked" for r in verified)
    assert result.gate_passed is None and result.exit_code == 0
    summary = parse((run / "report.html").read_text(encoding="utf-8")).sections["summary"].text
    assert "Gate not checked" in summary and "Gate passed" not in summary and "PASS" not in summary
    with _common.console.capture() as captured:
        _common.print_summary(result.rows(), run)
        _common.fail_if_rejected(result.rows(), gate=False)
    text = captured.get()
    assert "not checked" in text and "pass" not in text.replace("passed", "")
    assert "gate disabled" in text


def test_build_warns_about_uncertifiable_limits_before_any_stage(tmp_path: Path) -> None:
    from edgeprune.config import load_config
    from edgeprune.pipeline import run_build
    from tests.report.tiny import write_tiny_toml

    console = Console(record=True, width=200)
    strict = load_config(write_tiny_toml(tmp_path), {"verify.max_class_sensitivity_drop": 1.0})
    run_build(strict, tmp_path / "strict", to_stage="train", console=console, command=["pytest"])
    text = console.export_text()
    warnings = [line for line in text.splitlines() if line.startswith("warning: gate power:")]
    assert any("test has" in w and "> the 1 pp limit: cannot be certified" in w for w in warnings), text
    assert text.index("warning: gate power:") < text.index("Train or load")  # before the first stage
    off = load_config(write_tiny_toml(tmp_path), {"verify.max_class_sensitivity_drop": 1.0, "verify.gate": False})
    console = Console(record=True, width=200)
    run_build(off, tmp_path / "off", to_stage="train", console=console, command=["pytest"])
    assert "gate power" not in console.export_text()  # nothing to certify when the gate is disabled
