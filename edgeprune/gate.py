"""The accuracy gate: per artifact, on the upper confidence bound of the drop against the dense float model.

Also the gate's *power*: with few images of a class the bootstrap bound is wide, so even a candidate that
loses a single correct prediction of that class can be rejected. :func:`gate_power` says, per class and
split, how large the bound is for such a candidate, i.e. the smallest per-class limit a split can certify.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field

GATE_DISABLED = "gate disabled"  # the one reason of a verdict that was not checked (JUnit skips on it)
GateStatus = Literal["passed", "rejected", "not-checked"]


class GateVerdict(BaseModel):
    passed: bool | None = Field(description="None: the gate is disabled, nothing was checked")
    status: GateStatus = "passed"
    reasons: list[str] = Field(default_factory=list)
    bal_acc_drop_ub_pp: float | None = None
    worst_class: str | None = None
    worst_class_drop_ub_pp: float = 0.0
    unchecked_classes: list[str] = Field(default_factory=list, description="classes without images in the split")
    thresholds: dict[str, float] = Field(default_factory=dict)


def _drop_pp(interval: dict[str, Any] | None) -> float | None:
    """The upper bound of the drop in pp (-100 * lower bound of new - ref); None when undefined."""
    lo = (interval or {}).get("lo")
    return None if lo is None else -100.0 * float(lo)


def evaluate_gate(delta: dict[str, Any], class_names: list[str], max_bal_acc_drop: float,
                  max_class_sensitivity_drop: float, enabled: bool = True) -> GateVerdict:
    """``delta`` is ``paired_bootstrap_delta`` output (new - reference); drops are in percentage points.

    A class with no images in the evaluated split cannot be checked: the verdict names it and rejects (the
    contract cannot be certified for it). With ``enabled=False`` the bounds are still reported but the
    verdict is "not checked" (``passed`` is None), never "passed".
    """
    reasons: list[str] = []
    bal_drop = _drop_pp(delta.get("balanced_accuracy"))
    if bal_drop is None:
        reasons.append("balanced accuracy could not be computed on this split (no labelled images)")
    elif bal_drop > max_bal_acc_drop:
        reasons.append(f"balanced accuracy may drop by up to {bal_drop:.1f} pp (limit {max_bal_acc_drop:g})")
    worst, worst_drop = None, float("-inf")
    unchecked = []
    for name, d in zip(class_names, delta["per_class_sensitivity"], strict=False):
        drop = _drop_pp(d)
        if drop is None:
            unchecked.append(name)
            reasons.append(f"class '{name}' has no images in the evaluated split, so its sensitivity drop cannot "
                           f"be checked (add images of '{name}' to the test split)")
            continue
        if drop > worst_drop:
            worst, worst_drop = name, drop
        if drop > max_class_sensitivity_drop:
            reasons.append(f"sensitivity of class '{name}' may drop by up to {drop:.1f} pp "
                           f"(point estimate {-100 * float(d['delta']):.1f} pp; limit {max_class_sensitivity_drop:g})")
    passed: bool | None = not reasons
    status: GateStatus = "passed" if passed else "rejected"
    if not enabled:
        passed, status, reasons = None, "not-checked", [GATE_DISABLED]
    return GateVerdict(passed=passed, status=status, reasons=reasons,
                       bal_acc_drop_ub_pp=None if bal_drop is None else round(bal_drop, 2), worst_class=worst,
                       worst_class_drop_ub_pp=round(max(worst_drop, 0.0), 2), unchecked_classes=unchecked,
                       thresholds={"max_bal_acc_drop": max_bal_acc_drop,
                                   "max_class_sensitivity_drop": max_class_sensitivity_drop})


# --- power ------------------------------------------------------------------------------------------------------
# Definition: for a split with n_c images of class c, take a reference that is right on every image and a
# candidate identical to it except that it gets m images of class c wrong (m = 1, 2). The gate's own statistic
# (paired bootstrap, same resample count, seed and confidence) gives the upper bound of class c's sensitivity
# drop for that candidate. The one-flip bound is the smallest per-class limit the split can certify: a limit
# below it rejects every candidate that loses even one correct prediction of c. The class's drop interval only
# depends on its own images, so one bootstrap with m flips in every class gives all classes at once.


class ClassPower(BaseModel):
    name: str
    n: int = Field(description="images of this class in the split")
    one_flip_ub_pp: float | None = Field(description="drop bound when the candidate loses 1 correct prediction")
    two_flip_ub_pp: float | None = Field(description="drop bound when it loses 2")
    certifiable: bool = Field(description="one_flip_ub_pp <= the per-class limit")


class SplitPower(BaseModel):
    split: str
    n: int
    classes: list[ClassPower]
    bal_acc_one_flip_ub_pp: float | None = Field(
        description="balanced-accuracy drop bound when 1 prediction of the rarest class is lost")
    bal_acc_certifiable: bool

    def uncertifiable(self) -> list[ClassPower]:
        return [c for c in self.classes if not c.certifiable]


def _flipped(labels: np.ndarray, k: int, per_class: dict[int, int]) -> np.ndarray:
    """``labels`` with the first ``per_class[c]`` images of class c predicted as another class."""
    preds = labels.copy()
    for c, m in per_class.items():
        idx = np.flatnonzero(labels == c)[:m]
        preds[idx] = (c + 1) % k
    return preds


def split_power(split: str, class_counts: list[int], class_names: list[str], max_class_sensitivity_drop: float,
                max_bal_acc_drop: float, n_boot: int = 1000, seed: int = 0,
                confidence: float = 0.95) -> SplitPower:
    """The gate's power on a split with ``class_counts`` images per class (see the definition above)."""
    from edgeprune.metrics import paired_bootstrap_delta

    k = len(class_counts)
    labels = np.repeat(np.arange(k), class_counts).astype(np.int64)
    bounds: dict[int, list[float | None]] = {1: [None] * k, 2: [None] * k}
    bal_ub = None
    if labels.size and k >= 2:
        for m in (1, 2):
            flips = {c: m for c in range(k) if class_counts[c] >= m}
            if not flips:
                continue
            delta = paired_bootstrap_delta(labels, labels, _flipped(labels, k, flips), k, n_boot=n_boot, seed=seed,
                                           confidence=confidence)
            bounds[m] = [_drop_pp(delta["per_class_sensitivity"][c]) if c in flips else None for c in range(k)]
        present = [c for c in range(k) if class_counts[c] > 0]
        rarest = min(present, key=lambda c: class_counts[c])
        delta = paired_bootstrap_delta(labels, labels, _flipped(labels, k, {rarest: 1}), k, n_boot=n_boot,
                                       seed=seed, confidence=confidence)
        bal_ub = _drop_pp(delta["balanced_accuracy"])

    def rounded(v: float | None) -> float | None:
        return None if v is None else round(max(v, 0.0), 2)

    classes = [ClassPower(name=class_names[c], n=int(class_counts[c]), one_flip_ub_pp=rounded(bounds[1][c]),
                          two_flip_ub_pp=rounded(bounds[2][c]),
                          certifiable=_within(bounds[1][c], max_class_sensitivity_drop))
               for c in range(k)]
    return SplitPower(split=split, n=int(labels.size), classes=classes, bal_acc_one_flip_ub_pp=rounded(bal_ub),
                      bal_acc_certifiable=_within(bal_ub, max_bal_acc_drop))


def _within(bound: float | None, limit: float) -> bool:
    return bound is not None and bound <= limit


def gate_power(class_counts: dict[str, list[int]], class_names: list[str], max_class_sensitivity_drop: float,
               max_bal_acc_drop: float, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """``{"definition", "limits", "splits": {split: SplitPower}}`` for the splits in ``class_counts`` (val, test)."""
    splits = {name: split_power(name, counts, class_names, max_class_sensitivity_drop, max_bal_acc_drop, n_boot,
                                seed).model_dump()
              for name, counts in class_counts.items()}
    return {"definition": POWER_DEFINITION, "n_boot": n_boot, "seed": seed,
            "limits": {"max_bal_acc_drop": max_bal_acc_drop, "max_class_sensitivity_drop": max_class_sensitivity_drop},
            "splits": splits}


POWER_DEFINITION = (
    "one_flip_ub_pp: the upper bound of a class's sensitivity drop, computed with the gate's own paired "
    "bootstrap, for a candidate that differs from the reference only by losing one correct prediction of that "
    "class (two_flip_ub_pp: two). It is the smallest per-class limit the split can certify; a class whose "
    "one-flip bound exceeds the limit is 'not certifiable': the gate there passes only candidates that keep "
    "every correct prediction of the class.")


def power_warnings(power: dict[str, Any]) -> list[str]:
    """One short line per class (and split) whose limit cannot be certified, plus one line on the fix."""
    limits = power["limits"]
    lines = []
    for split, sp in power["splits"].items():
        for c in sp["classes"]:
            if c["certifiable"]:
                continue
            if c["n"] == 0:
                lines.append(f"gate power: the {split} split has no '{c['name']}' image: that class cannot be checked")
                continue
            lines.append(f"gate power: {split} has {c['n']} '{c['name']}' images; one lost correct prediction already "
                         f"bounds its drop at {c['one_flip_ub_pp']:.1f} pp > the "
                         f"{limits['max_class_sensitivity_drop']:g} pp limit: cannot be certified")
        if not sp["bal_acc_certifiable"] and sp["n"]:
            lines.append(f"gate power: {split}: one lost prediction of the rarest class already bounds the balanced-"
                         f"accuracy drop at {sp['bal_acc_one_flip_ub_pp']:.1f} pp > the "
                         f"{limits['max_bal_acc_drop']:g} pp limit: cannot be certified")
    if lines:
        lines.append("gate power: add images of those classes, or loosen the limits (--max-class-sensitivity-drop, "
                     "--max-bal-acc-drop); details in report.json gate.power")
    return lines


def why_no_pruned_model_passes(rows: list[dict[str, Any]], power: dict[str, Any] | None) -> str | None:
    """When every verified pruned artifact was rejected on a class that the test split is too small to certify,
    the plain reason and the two ways out; None otherwise (then the per-artifact reasons say enough)."""
    pruned = [r for r in rows if r.get("variant") == "pruned" and r.get("gate")]
    if not pruned or not power or any(r.get("gate_passed") for r in pruned):
        return None
    test = power.get("splits", {}).get("test") or {}
    weak = {c["name"]: c for c in test.get("classes", []) if not c["certifiable"] and c["n"]}
    hit = sorted({r["gate"].get("worst_class") for r in pruned} & set(weak))
    if not hit:
        return None
    c = weak[hit[0]]
    limit = power["limits"]["max_class_sensitivity_drop"]
    return (f"no pruned artifact passes: the test split has only {c['n']} '{c['name']}' images, so losing a single "
            f"correct prediction of that class already bounds its drop at {c['one_flip_ub_pp']:.1f} pp, above the "
            f"{limit:g} pp limit. Add '{c['name']}' images to the test split, or state a limit of at least "
            f"{c['one_flip_ub_pp']:.1f} pp (--max-class-sensitivity-drop) if that is acceptable for your use")
