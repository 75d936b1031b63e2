"""Recovering accuracy after pruning, shared by the build's finetune stage, gradual pruning, the bake-off and
the search (which calls ``recover_model`` / ``recover`` with its own length).

What protects the minority class (issue 13): class-weighted distillation (``finetune.kd_weighting``), the
worst-class checkpoint rule on validation (``finetune.select``), and a length in images seen rather than a
fixed epoch count (``finetune.images`` when ``finetune.epochs`` is not given).
"""

from __future__ import annotations

from typing import Any

import torch.nn as nn

from edgeprune.config import FinetuneConfig
from edgeprune.pipeline.context import BuildContext, PreparedData
from edgeprune.train import TrainResult, TrainSettings, scaled_epochs, train_model


def finetune_length(ft: FinetuneConfig, n_train: int) -> tuple[int, str]:
    """Fine-tuning epochs and how they were chosen: the configured count, or the scaled default."""
    if ft.epochs is not None:
        return ft.epochs, f"{ft.epochs} epochs (configured)"
    epochs = scaled_epochs(n_train, ft.images, ft.min_epochs, ft.max_epochs)
    return epochs, (f"{epochs} epochs = ceil({ft.images} images / {n_train} training images), "
                    f"bounded to [{ft.min_epochs}, {ft.max_epochs}]")


def train_settings(ctx: BuildContext, section: Any, seed: int | None = None) -> TrainSettings:
    """Training settings from a config section (``train`` or ``finetune``) plus the shared train options."""
    cfg = ctx.cfg
    epochs = section.epochs
    if isinstance(section, FinetuneConfig):
        epochs, _ = finetune_length(section, len(ctx.data.train))
    return TrainSettings(
        epochs=epochs, batch_size=cfg.train.batch_size, optimizer=section.optimizer, lr=section.lr,
        weight_decay=cfg.train.weight_decay, balance=cfg.train.balance, patience=section.patience,
        augment=cfg.train.augment, seed=cfg.seed if seed is None else seed, device=cfg.train.device,
        temperature=getattr(section, "temperature", 4.0), alpha=getattr(section, "alpha", 0.5),
        kd_weighting=getattr(section, "kd_weighting", "none"), select=getattr(section, "select", "balanced-accuracy"),
        worst_class_margin=getattr(section, "worst_class_margin", 0.05),
    )


def recovery_settings(ctx: BuildContext, seed: int | None = None, epochs: int | None = None) -> TrainSettings:
    """The configured fine-tuning settings; ``epochs`` (e.g. a search trial's length) overrides the length."""
    s = train_settings(ctx, ctx.cfg.finetune, seed)
    if epochs is not None:
        s.epochs = epochs
    return s


def recover_model(model: nn.Module, teacher: nn.Module | None, data: PreparedData, settings: TrainSettings,
                  on_epoch: Any = None, reference_worst_class: float | None = None) -> TrainResult:
    """Fine-tune ``model`` on ``data.train`` (distilling from ``teacher`` when given), keeping the epoch the
    settings' rule selects on ``data.val``. The test split is never read."""
    return train_model(model, data.train, data.val, data.num_classes, settings, teacher=teacher, on_epoch=on_epoch,
                       reference_worst_class=reference_worst_class)


def recover(ctx: BuildContext, model: nn.Module, recovery: str, dense: nn.Module | None, seed: int | None = None,
            on_epoch: Any = None, epochs: int | None = None) -> TrainResult | None:
    """Fine-tune (distilling from ``dense`` if configured) or, for pruning at init, train from scratch (no teacher).

    ``epochs`` overrides the configured / scaled fine-tuning length. Returns None when there is nothing to do
    (no fine-tuning epochs).
    """
    ft = ctx.cfg.finetune
    if recovery == "train-from-scratch":
        # pruning at initialisation never needs the dense model: no distillation here
        settings = train_settings(ctx, ctx.cfg.train, seed)
        return train_model(model, ctx.data.train, ctx.data.val, ctx.data.num_classes, settings, on_epoch=on_epoch)
    settings = recovery_settings(ctx, seed, epochs)
    if settings.epochs == 0:
        return None
    teacher = dense if ft.distill else None
    reference = None
    if teacher is None and dense is not None and settings.select == "worst-class":
        from edgeprune.train.loop import evaluate

        reference = evaluate(dense, ctx.data.val, ctx.data.num_classes)["val_worst_class_sensitivity"]
    result = recover_model(model, teacher, ctx.data, settings, on_epoch, reference)
    result.length_rule = (f"{settings.epochs} epochs (requested)" if epochs is not None
                          else finetune_length(ft, len(ctx.data.train))[1])
    return result
