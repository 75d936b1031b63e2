"""The accuracy gate: per artifact, on the upper confidence bound of the drop against the dense float model."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class GateVerdict(BaseModel):
    passed: bool
    reasons: list[str] = Field(default_factory=list)
    bal_acc_drop_ub_pp: float
    worst_class: str | None = None
    worst_class_drop_ub_pp: float = 0.0
    thresholds: dict[str, float] = Field(default_factory=dict)


def evaluate_gate(delta: dict[str, Any], class_names: list[str], max_bal_acc_drop: float,
                  max_class_sensitivity_drop: float) -> GateVerdict:
    """``delta`` is ``paired_bootstrap_delta`` output (new - reference); drops are in percentage points."""
    bal_drop = -100.0 * float(delta["balanced_accuracy"]["lo"])
    reasons = []
    if bal_drop > max_bal_acc_drop:
        reasons.append(f"balanced accuracy may drop by up to {bal_drop:.1f} pp (limit {max_bal_acc_drop:g})")
    worst, worst_drop = None, float("-inf")
    for name, d in zip(class_names, delta["per_class_sensitivity"], strict=False):
        drop = -100.0 * float(d["lo"])
        if drop > worst_drop:
            worst, worst_drop = name, drop
        if drop > max_class_sensitivity_drop:
            reasons.append(f"sensitivity of class '{name}' may drop by up to {drop:.1f} pp "
                           f"(point estimate {-100 * float(d['delta']):.1f} pp; limit {max_class_sensitivity_drop:g})")
    return GateVerdict(passed=not reasons, reasons=reasons, bal_acc_drop_ub_pp=round(bal_drop, 2), worst_class=worst,
                       worst_class_drop_ub_pp=round(max(worst_drop, 0.0), 2),
                       thresholds={"max_bal_acc_drop": max_bal_acc_drop,
                                   "max_class_sensitivity_drop": max_class_sensitivity_drop})
