"""The search's contract: the gate's limits (plus an optional floor), checked on the validation split.

A trial is scored with the statistic the gate applies on test: the upper bound of the paired-bootstrap drop
against the dense model, overall and per class (``edgeprune.metrics`` / ``edgeprune.gate``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from edgeprune.gate import evaluate_gate
from edgeprune.metrics import classification_metrics, paired_bootstrap_delta


@dataclass(frozen=True)
class Contract:
    max_bal_acc_drop: float  # pp, on the upper bound of the drop
    max_class_sensitivity_drop: float  # pp, per class
    min_class_sensitivity: float | None = None  # %, absolute floor on every class
    bootstrap: int = 1000

    def describe(self) -> str:
        text = (f"balanced-accuracy drop <= {self.max_bal_acc_drop:g} pp and every class's sensitivity drop <= "
                f"{self.max_class_sensitivity_drop:g} pp (upper 95% bounds, validation)")
        if self.min_class_sensitivity is not None:
            text += f", every class's sensitivity >= {self.min_class_sensitivity:g} %"
        return text


@dataclass
class ValScore:
    """One model against the dense model on the validation split."""

    balanced_accuracy: float
    worst_class: str | None
    worst_class_sensitivity: float
    bal_acc_drop_ub_pp: float
    worst_class_drop_ub_pp: float
    worst_drop_class: str | None
    broken: list[str] = field(default_factory=list)  # one line per broken limit
    excess: float = 0.0  # largest overshoot of a limit, in pp (0 when the contract holds)

    @property
    def feasible(self) -> bool:
        return not self.broken

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def score_on_val(dense_logits: np.ndarray, logits: np.ndarray, labels: np.ndarray, class_names: list[str],
                 contract: Contract, seed: int) -> ValScore:
    """Score ``logits`` (a pruned model on val) against the dense model's val logits under ``contract``."""
    k = len(class_names)
    metrics = classification_metrics(logits, labels, k)
    delta = paired_bootstrap_delta(labels, dense_logits.argmax(1), logits.argmax(1), k, n_boot=contract.bootstrap,
                                   seed=seed)
    verdict = evaluate_gate(delta, class_names, contract.max_bal_acc_drop, contract.max_class_sensitivity_drop)
    present = [c for c in range(k) if metrics.support[c] > 0]
    sens = metrics.per_class_sensitivity
    worst = min(present, key=lambda c: sens[c]) if present else None
    excess = max(0.0, verdict.bal_acc_drop_ub_pp - contract.max_bal_acc_drop,
                 verdict.worst_class_drop_ub_pp - contract.max_class_sensitivity_drop)
    broken = list(verdict.reasons)
    if contract.min_class_sensitivity is not None and worst is not None:
        floor_gap = contract.min_class_sensitivity - 100 * sens[worst]
        if floor_gap > 0:
            broken.append(f"sensitivity of class '{class_names[worst]}' is {100 * sens[worst]:.1f} % "
                          f"(floor {contract.min_class_sensitivity:g} %)")
            excess = max(excess, floor_gap)
    return ValScore(
        balanced_accuracy=float(metrics.balanced_accuracy),
        worst_class=class_names[worst] if worst is not None else None,
        worst_class_sensitivity=float(sens[worst]) if worst is not None else float("nan"),
        bal_acc_drop_ub_pp=verdict.bal_acc_drop_ub_pp, worst_class_drop_ub_pp=verdict.worst_class_drop_ub_pp,
        worst_drop_class=verdict.worst_class, broken=broken, excess=round(float(excess), 3),
    )


def penalised(cost: float, score: ValScore) -> float:
    """The value Optuna minimises: the cost fraction (0..1] when the contract holds, above 1 when it breaks."""
    return cost if score.feasible else 1.0 + cost + score.excess / 10.0
