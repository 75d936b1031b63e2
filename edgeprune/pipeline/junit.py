"""JUnit XML for CI systems: one test case per gate and artifact, failures carrying the gate's message.

Per artifact there are three cases: ``balanced_accuracy`` (drop on the upper confidence bound vs the dense
float model), ``worst_class_sensitivity`` (the same per class) and ``numeric_parity`` (the artifact's outputs
vs the PyTorch model it was converted from). An artifact that was never verified gives skipped cases.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from edgeprune.fsutil import write_bytes_atomic

FLOAT_PRECISIONS = ("fp32",)


def _pp(value: float | None) -> str:
    return "n/a" if value is None else f"{float(value) + 0.0:.2f} pp"  # + 0.0 turns -0.0 into 0.0


def _bal_acc_case(row: dict[str, Any]) -> tuple[str | None, str]:
    gate = row.get("gate") or {}
    all_reasons = row.get("gate_reasons") or []
    reasons = [r for r in all_reasons if r.startswith("balanced accuracy")]
    if row.get("gate_passed") is False and not any(r.startswith(("balanced accuracy", "sensitivity of class"))
                                                   for r in all_reasons):
        reasons = all_reasons or ["rejected by the gate"]  # never lose a failure whose wording is unknown
    limit = (gate.get("thresholds") or {}).get("max_bal_acc_drop")
    detail = f"drop upper bound {_pp(gate.get('bal_acc_drop_ub_pp'))} (limit {limit} pp)"
    return ("; ".join(reasons) if reasons else None), detail


def _class_case(row: dict[str, Any]) -> tuple[str | None, str]:
    gate = row.get("gate") or {}
    reasons = [r for r in row.get("gate_reasons") or [] if r.startswith("sensitivity of class")]
    limit = (gate.get("thresholds") or {}).get("max_class_sensitivity_drop")
    detail = (f"worst class '{gate.get('worst_class')}': drop upper bound {_pp(gate.get('worst_class_drop_ub_pp'))} "
              f"(limit {limit} pp)")
    return ("; ".join(reasons) if reasons else None), detail


def _parity_case(row: dict[str, Any], fp32_tolerance: float, min_agreement: float) -> tuple[str | None, str]:
    max_abs, agree = float(row["max_abs_logit_error"]), float(row["top1_agreement"])
    detail = f"max-abs logit difference {max_abs:.3g}, top-1 agreement {100 * agree:.2f}%"
    problems = []
    if max_abs != max_abs:  # NaN: non-finite outputs
        problems.append("outputs are not finite")
    if row.get("precision") in FLOAT_PRECISIONS and max_abs > fp32_tolerance:
        problems.append(f"max-abs logit difference {max_abs:.3g} exceeds the fp32 tolerance {fp32_tolerance:g}")
    if agree < min_agreement:
        problems.append(f"top-1 agreement {100 * agree:.2f}% is below {100 * min_agreement:g}%")
    return ("; ".join(problems) if problems else None), detail


def junit_tree(rows: list[dict[str, Any]], *, fp32_tolerance: float = 1e-3, min_agreement: float = 0.9,
               suite: str = "edgeprune.gates") -> ET.Element:
    root = ET.Element("testsuites", name="edgeprune")
    ts = ET.SubElement(root, "testsuite", name=suite)
    counts = {"tests": 0, "failures": 0, "skipped": 0}
    for row in rows:
        verified = row.get("gate_passed") is not None or row.get("gate_status") == "not-checked"
        cases = [("balanced_accuracy", _bal_acc_case), ("worst_class_sensitivity", _class_case)]
        for case_name, fn in cases + [("numeric_parity", None)]:
            tc = ET.SubElement(ts, "testcase", classname=f"{suite}.{row['name']}", name=case_name,
                               file=str(row.get("file", "")))
            counts["tests"] += 1
            parity_ready = row.get("max_abs_logit_error") is not None and row.get("top1_agreement") is not None
            disabled = fn is not None and "gate disabled" in (row.get("gate_reasons") or [])
            if not verified or disabled or (fn is None and not parity_ready):
                ET.SubElement(tc, "skipped", message="gate disabled" if disabled else "not verified")
                counts["skipped"] += 1
                continue
            failure, detail = fn(row) if fn else _parity_case(row, fp32_tolerance, min_agreement)
            if failure:
                node = ET.SubElement(tc, "failure", message=failure, type="GateFailed")
                node.text = f"{row['name']}: {failure}\n{detail}"
                counts["failures"] += 1
            else:
                ET.SubElement(tc, "system-out").text = detail
    for el in (root, ts):
        for key, value in counts.items():
            el.set(key, str(value))
        el.set("errors", "0")
    ET.indent(root)
    return root


def write_junit(rows: list[dict[str, Any]], path: str | Path, *, fp32_tolerance: float = 1e-3,
                min_agreement: float = 0.9) -> Path:
    """Write the JUnit XML for ``rows`` (``BuildOutcome.rows`` or report.json's ``artifacts``) atomically."""
    root = junit_tree(rows, fp32_tolerance=fp32_tolerance, min_agreement=min_agreement)
    data = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return write_bytes_atomic(path, data + b"\n")
