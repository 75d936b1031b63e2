"""Class weights, class-weighted distillation, and the scaled fine-tuning length."""

from __future__ import annotations

import pytest
import torch

from edgeprune.config import FinetuneConfig, validate_config
from edgeprune.errors import EdgepruneError
from edgeprune.pipeline.recovery import finetune_length
from edgeprune.train import scaled_epochs
from edgeprune.train.loop import _class_weights, distillation_loss


def test_class_weights_are_inverse_frequency_and_zero_for_absent_classes() -> None:
    w = _class_weights(torch.tensor([0, 0, 0, 1]), 3)
    # n / (k * count): 4 / (3 * 3), 4 / (3 * 1), and 0 for the class with no image
    assert torch.allclose(w, torch.tensor([4 / 9, 4 / 3, 0.0]))
    # each present class carries the same total weight: 3 images * 4/9 == 1 image * 4/3
    y = torch.tensor([0, 0, 0, 1])
    assert float(w[y][y == 0].sum()) == pytest.approx(float(w[y][y == 1].sum()))


def test_class_weighted_distillation_is_the_weighted_mean_of_per_image_kl() -> None:
    torch.manual_seed(0)
    student, teacher = torch.randn(4, 3), torch.randn(4, 3)
    t = 4.0
    per = torch.nn.functional.kl_div(torch.log_softmax(student / t, 1), torch.softmax(teacher / t, 1),
                                     reduction="none").sum(1) * t * t
    plain = distillation_loss(student, teacher, t)
    assert float(plain) == pytest.approx(float(per.mean()), rel=1e-6)
    # equal weights change nothing; weights move the loss towards the heavy images' KL
    assert float(distillation_loss(student, teacher, t, torch.full((4,), 2.5))) == pytest.approx(float(plain), rel=1e-6)
    weights = torch.tensor([0.0, 0.0, 0.0, 1.0])
    assert float(distillation_loss(student, teacher, t, weights)) == pytest.approx(float(per[3]), rel=1e-6)
    w = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert float(distillation_loss(student, teacher, t, w)) == pytest.approx(float((per * w).sum() / w.sum()), rel=1e-6)


@pytest.mark.parametrize(("n_train", "expected"), [
    (1080, 8),     # RetinaMNIST: ceil(8000 / 1080)
    (546, 15),     # BreastMNIST: ceil(8000 / 546)
    (800, 10),     # exact division
    (100, 30),     # tiny data: capped at max_epochs
    (100_000, 3),  # big data: at least min_epochs
])
def test_scaled_epochs(n_train: int, expected: int) -> None:
    assert scaled_epochs(n_train, 8000, 3, 30) == expected


def test_finetune_length_uses_the_configured_epochs_or_scales() -> None:
    assert finetune_length(FinetuneConfig(epochs=5), 1080) == (5, "5 epochs (configured)")
    assert finetune_length(FinetuneConfig(epochs=0), 1080)[0] == 0
    epochs, why = finetune_length(FinetuneConfig(), 1080)
    assert epochs == 8 and "ceil(8000 images / 1080 training images)" in why
    assert finetune_length(FinetuneConfig(images=2000, min_epochs=1, max_epochs=4), 100)[0] == 4


def test_finetune_defaults_and_bad_bounds() -> None:
    ft = FinetuneConfig()
    assert (ft.epochs, ft.kd_weighting, ft.select, ft.worst_class_margin) == (None, "class", "worst-class", 0.05)
    with pytest.raises(EdgepruneError, match="min_epochs"):
        validate_config({"finetune": {"min_epochs": 10, "max_epochs": 5}}, "flags")
    with pytest.raises(EdgepruneError, match="finetune.select"):
        validate_config({"finetune": {"select": "accuracy"}}, "flags")
