"""--junit-xml: one test case per gate and artifact, failures with the gate's message."""

from __future__ import annotations

import copy
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from edgeprune.pipeline.junit import write_junit

CASES = ["balanced_accuracy", "worst_class_sensitivity", "numeric_parity"]


def _cases(path: Path) -> dict[tuple[str, str], ET.Element]:
    root = ET.parse(path).getroot()
    return {(tc.get("classname").rsplit(".", 1)[-1], tc.get("name")): tc for tc in root.iter("testcase")}


def _rows(run: Path) -> list[dict[str, Any]]:
    return json.loads((run / "report.json").read_text())["artifacts"]


def test_one_case_per_gate_and_artifact(tiny_run_dir: Path, tmp_path: Path) -> None:
    rows = _rows(tiny_run_dir)
    out = write_junit(rows, tmp_path / "gates.xml")
    cases = _cases(out)
    assert set(cases) == {(r["name"], c) for r in rows for c in CASES}
    suite = ET.parse(out).getroot().find("testsuite")
    assert suite.get("tests") == str(3 * len(rows))
    for r in rows:
        passed = r["gate_passed"]
        for c in CASES[:2]:
            assert (cases[(r["name"], c)].find("failure") is None) is passed
    fp32 = next(r for r in rows if r["precision"] == "fp32")
    assert cases[(fp32["name"], "numeric_parity")].find("failure") is None  # fp32 matches torch (verified)


def test_failures_carry_the_gate_messages(tiny_run_dir: Path, tmp_path: Path) -> None:
    rows = copy.deepcopy(_rows(tiny_run_dir))
    bad, unverified = rows[0], rows[1]
    bad.update(gate_passed=False, precision="fp32", max_abs_logit_error=0.5, gate_reasons=[
        "balanced accuracy may drop by up to 7.5 pp (limit 5)",
        "sensitivity of class 'grade-3' may drop by up to 30.0 pp (point estimate 20.0 pp; limit 15)"])
    unverified.update(gate_passed=None, top1_agreement=None, max_abs_logit_error=None)
    cases = _cases(write_junit(rows, tmp_path / "gates.xml", fp32_tolerance=1e-3))
    bal = cases[(bad["name"], "balanced_accuracy")].find("failure")
    cls = cases[(bad["name"], "worst_class_sensitivity")].find("failure")
    parity = cases[(bad["name"], "numeric_parity")].find("failure")
    assert "7.5 pp" in bal.get("message") and "grade-3" not in bal.get("message")
    assert "grade-3" in cls.get("message") and "30.0 pp" in cls.text
    assert "exceeds the fp32 tolerance" in parity.get("message")
    for c in CASES:
        assert cases[(unverified["name"], c)].find("skipped") is not None
    root = ET.parse(tmp_path / "gates.xml").getroot()
    assert root.get("failures") == "3" and root.get("skipped") == "3"
