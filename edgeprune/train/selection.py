"""Which epoch's weights to keep: the checkpoint-selection rule used for early stopping on the validation split.

Two rules:

- ``balanced-accuracy``: the epoch with the highest validation balanced accuracy (first one on ties).
- ``worst-class``: an epoch is *eligible* when its validation worst-class sensitivity is at least the
  reference's (the dense model's, on the same split) minus ``margin``. The eligible epoch with the highest
  balanced accuracy wins; when no epoch is eligible, the one with the highest worst-class sensitivity wins
  (balanced accuracy breaks ties). Without a reference it falls back to ``balanced-accuracy``.

Early stopping counts the epochs since the selection key last improved; ``pick_epoch`` replays the same rule
on a recorded history, so what the loop keeps is what ``pick_epoch`` names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

SelectMetric = Literal["balanced-accuracy", "worst-class"]
BAL_ACC = "val_balanced_accuracy"
WORST = "val_worst_class_sensitivity"


def class_recalls(pred: np.ndarray, labels: np.ndarray, num_classes: int) -> list[float | None]:
    """Per-class sensitivity (recall); None for a class with no images in ``labels``."""
    return [float((pred[labels == c] == c).mean()) if (labels == c).any() else None for c in range(num_classes)]


def worst_class_sensitivity(logits: np.ndarray, labels: np.ndarray, num_classes: int) -> float:
    """The lowest sensitivity over the classes present in ``labels`` (nan when none is)."""
    present = [r for r in class_recalls(logits.argmax(1), labels, num_classes) if r is not None]
    return float(min(present)) if present else float("nan")


@dataclass(frozen=True)
class SelectionRule:
    """The rule that ranks epochs (see the module docstring)."""

    metric: SelectMetric = "balanced-accuracy"
    margin: float = 0.05
    reference: float | None = None  # dense model's validation worst-class sensitivity

    @property
    def uses_worst_class(self) -> bool:
        return self.metric == "worst-class" and self.reference is not None and not np.isnan(self.reference)

    def eligible(self, record: dict[str, float]) -> bool:
        if not self.uses_worst_class:
            return True
        assert self.reference is not None
        return record[WORST] >= self.reference - self.margin - 1e-9

    def key(self, record: dict[str, float]) -> tuple[float, float, float]:
        """Larger is better; compared as a tuple."""
        bal = record[BAL_ACC]
        if not self.uses_worst_class:
            return (1.0, bal, 0.0)
        worst = record[WORST]
        return (1.0, bal, worst) if self.eligible(record) else (0.0, worst, bal)

    def describe(self) -> str:
        if not self.uses_worst_class:
            return "highest validation balanced accuracy"
        return (f"highest validation balanced accuracy among epochs whose worst-class sensitivity is "
                f">= {self.reference:.3f} - {self.margin:.3f} (dense on validation); if none, "
                f"highest worst-class sensitivity")

    def reason(self, record: dict[str, float]) -> str:
        """Why the kept epoch was kept, for the report."""
        if not self.uses_worst_class:
            return f"best validation balanced accuracy ({record[BAL_ACC]:.3f})"
        if self.eligible(record):
            return (f"best validation balanced accuracy ({record[BAL_ACC]:.3f}) with worst-class sensitivity "
                    f"{record[WORST]:.3f} within {self.margin:.3f} of the dense model's {self.reference:.3f}")
        return (f"no epoch kept worst-class sensitivity within {self.margin:.3f} of the dense model's "
                f"{self.reference:.3f}; kept the highest ({record[WORST]:.3f})")

    def summary(self) -> dict[str, object]:
        return {"metric": self.metric, "margin": self.margin, "reference_worst_class": self.reference,
                "rule": self.describe()}


def improves(rule: SelectionRule, record: dict[str, float], best: dict[str, float] | None) -> bool:
    """True when ``record`` beats the best so far (strictly: the earlier epoch wins ties)."""
    if best is None:
        return True
    for new, old in zip(rule.key(record), rule.key(best), strict=True):
        if abs(new - old) > 1e-9:
            return new > old
    return False


def pick_epoch(history: Sequence[dict[str, float]], rule: SelectionRule, patience: int | None = None) -> int:
    """The 1-based epoch the rule keeps from ``history`` (stopping after ``patience`` stale epochs); -1 if empty."""
    best: dict[str, float] | None = None
    best_epoch, stale = -1, 0
    for i, record in enumerate(history, start=1):
        if improves(rule, record, best):
            best, best_epoch, stale = record, i, 0
        else:
            stale += 1
            if patience is not None and stale >= patience:
                break
    return best_epoch
