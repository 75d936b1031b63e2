"""The checkpoint-selection rule on planted histories, and the loop keeping what the rule names."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from edgeprune.models import create_model
from edgeprune.train import SelectionRule, TensorData, TrainSettings, pick_epoch, train_model
from edgeprune.train.selection import worst_class_sensitivity


def _history(*pairs: tuple[float, float]) -> list[dict[str, float]]:
    return [{"val_balanced_accuracy": b, "val_worst_class_sensitivity": w} for b, w in pairs]


# epoch:        1            2            3             4
PLANTED = _history((0.60, 0.50), (0.70, 0.10), (0.65, 0.45), (0.66, 0.20))


def test_balanced_accuracy_rule_takes_the_highest_balanced_accuracy() -> None:
    assert pick_epoch(PLANTED, SelectionRule("balanced-accuracy")) == 2


def test_worst_class_rule_takes_the_best_balanced_accuracy_among_eligible_epochs() -> None:
    # dense worst class 0.50, margin 0.05: epochs 1 (0.50) and 3 (0.45, exactly on the line) are eligible
    assert pick_epoch(PLANTED, SelectionRule("worst-class", margin=0.05, reference=0.50)) == 3
    # a tighter margin leaves only epoch 1
    assert pick_epoch(PLANTED, SelectionRule("worst-class", margin=0.0, reference=0.50)) == 1


def test_worst_class_rule_without_eligible_epoch_takes_the_highest_worst_class() -> None:
    rule = SelectionRule("worst-class", margin=0.05, reference=0.90)
    assert pick_epoch(PLANTED, rule) == 1
    # ties on worst-class sensitivity go to the higher balanced accuracy, then to the earlier epoch
    assert pick_epoch(_history((0.60, 0.30), (0.64, 0.30), (0.64, 0.30)), rule) == 2


def test_worst_class_rule_without_reference_falls_back_to_balanced_accuracy() -> None:
    assert pick_epoch(PLANTED, SelectionRule("worst-class", reference=None)) == 2
    assert pick_epoch(PLANTED, SelectionRule("worst-class", reference=math.nan)) == 2


def test_patience_stops_on_the_rule_not_on_balanced_accuracy() -> None:
    rule = SelectionRule("worst-class", margin=0.05, reference=0.50)
    # epoch 2 has the best balanced accuracy but is ineligible: one stale epoch, and patience 1 stops there
    assert pick_epoch(PLANTED, rule, patience=1) == 1
    assert pick_epoch(PLANTED, SelectionRule("balanced-accuracy"), patience=1) == 2


def test_reason_names_the_rule_and_the_numbers() -> None:
    rule = SelectionRule("worst-class", margin=0.05, reference=0.50)
    assert "within 0.050 of the dense model's 0.500" in rule.reason(PLANTED[2])
    assert "no epoch kept" in rule.reason(PLANTED[1])


def test_worst_class_sensitivity_ignores_absent_classes() -> None:
    logits = np.eye(3)[[0, 0, 1, 1]]  # predictions 0, 0, 1, 1
    assert worst_class_sensitivity(logits, np.array([0, 1, 1, 1]), 3) == pytest.approx(2 / 3)
    assert math.isnan(worst_class_sensitivity(np.zeros((0, 3)), np.zeros(0, dtype=int), 3))


def _blobs(n: int, seed: int) -> TensorData:
    """Three separable but noisy classes, the last one rare."""
    g = torch.Generator().manual_seed(seed)
    y = torch.tensor([0] * (n // 2) + [1] * (n // 3) + [2] * (n - n // 2 - n // 3))
    x = torch.randn(n, 3, 8, 8, generator=g) * 1.5
    x[:, 0] += (y == 1).float().view(-1, 1, 1)
    x[:, 1] += (y == 2).float().view(-1, 1, 1) * 0.8
    return TensorData(x, y)


def test_the_loop_keeps_the_epoch_the_rule_names() -> None:
    torch.manual_seed(0)
    train, val = _blobs(96, 0), _blobs(48, 1)
    model = create_model("test_tinycnn", num_classes=3, in_channels=3)
    settings = TrainSettings(epochs=5, batch_size=32, lr=3e-3, patience=5, augment=False, device="cpu",
                             select="worst-class", worst_class_margin=0.0)
    result = train_model(model, train, val, 3, settings, reference_worst_class=0.6)
    rule = SelectionRule("worst-class", margin=0.0, reference=0.6)
    assert len(result.history) == 5
    assert result.best_epoch == pick_epoch(result.history, rule, patience=5)
    assert all("val_worst_class_sensitivity" in r for r in result.history)
    kept = result.history[result.best_epoch - 1]
    assert result.best_val_balanced_accuracy == kept["val_balanced_accuracy"]
    assert result.selection["reference_worst_class"] == 0.6 and result.selection["reason"] == rule.reason(kept)
    # the restored weights are the kept epoch's: re-measuring gives its numbers
    from edgeprune.train.loop import evaluate

    again = evaluate(result.model, val, 3)
    assert again["val_worst_class_sensitivity"] == pytest.approx(kept["val_worst_class_sensitivity"])
    assert again["val_balanced_accuracy"] == pytest.approx(kept["val_balanced_accuracy"])
