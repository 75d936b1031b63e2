"""Recovering accuracy after pruning, shared by the build's finetune stage and the bake-off."""

from __future__ import annotations

from typing import Any

import torch.nn as nn

from edgeprune.pipeline.context import BuildContext
from edgeprune.train import TrainResult, TrainSettings, train_model


def train_settings(ctx: BuildContext, section: Any, seed: int | None = None) -> TrainSettings:
    """Training settings from a config section (``train`` or ``finetune``) plus the shared train options."""
    cfg = ctx.cfg
    return TrainSettings(
        epochs=section.epochs, batch_size=cfg.train.batch_size, optimizer=section.optimizer, lr=section.lr,
        weight_decay=cfg.train.weight_decay, balance=cfg.train.balance, patience=section.patience,
        augment=cfg.train.augment, seed=cfg.seed if seed is None else seed, device=cfg.train.device,
        temperature=getattr(section, "temperature", 4.0), alpha=getattr(section, "alpha", 0.5),
    )


def recover(ctx: BuildContext, model: nn.Module, recovery: str, dense: nn.Module | None, seed: int | None = None,
            on_epoch: Any = None) -> TrainResult | None:
    """Fine-tune (distilling from ``dense`` if configured) or, for pruning at init, train from scratch (no teacher).

    Returns None when there is nothing to do (no fine-tuning epochs).
    """
    data, ft = ctx.data, ctx.cfg.finetune
    teacher = dense if ft.distill else None
    if recovery == "train-from-scratch":
        # pruning at initialisation never needs the dense model: no distillation here
        settings, teacher = train_settings(ctx, ctx.cfg.train, seed), None
    elif ft.epochs == 0:
        return None
    else:
        settings = train_settings(ctx, ft, seed)
    return train_model(model, data.train, data.val, data.num_classes, settings, teacher=teacher, on_epoch=on_epoch)
