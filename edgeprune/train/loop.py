"""The train / fine-tune loop: class balancing, cosine schedule, (class-weighted) distillation, and early stopping
on the validation split by a selection rule (balanced accuracy, optionally guarded by worst-class sensitivity)."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from edgeprune.train import distributed as dist_utils
from edgeprune.train.selection import (
    BAL_ACC,
    WORST,
    SelectionRule,
    SelectMetric,
    improves,
    worst_class_sensitivity,
)

AfterBackward = Callable[[nn.Module], None]


@dataclass
class TensorData:
    """Preprocessed inputs (N,C,H,W float32) and labels (N,) int64."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])


@dataclass
class TrainSettings:
    epochs: int = 12
    batch_size: int = 64
    optimizer: Literal["sgd", "adamw"] = "adamw"
    lr: float = 3e-3
    weight_decay: float = 5e-4
    balance: Literal["weighted-loss", "sampler", "none"] = "weighted-loss"
    patience: int = 6
    augment: bool = True
    seed: int = 0
    device: str = "auto"
    temperature: float = 4.0
    alpha: float = 0.5
    kd_weighting: Literal["none", "class"] = "none"  # "class": each sample's KD term weighted by its class weight
    select: SelectMetric = "balanced-accuracy"  # checkpoint-selection rule (edgeprune.train.selection)
    worst_class_margin: float = 0.05


@dataclass
class TrainResult:
    model: nn.Module
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = -1
    best_val_balanced_accuracy: float = float("nan")
    seconds: float = 0.0
    samples_seen: int = 0
    epochs_planned: int = 0
    length_rule: str = ""
    selection: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "epochs_run": len(self.history),
            "epochs_planned": self.epochs_planned,
            **({"length_rule": self.length_rule} if self.length_rule else {}),
            "best_epoch": self.best_epoch,
            "best_val_balanced_accuracy": self.best_val_balanced_accuracy,
            "selection": self.selection,
            "seconds": round(self.seconds, 2),
            "samples_seen": self.samples_seen,
            "history": self.history,
        }


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    """Eval-mode logits as float32 numpy."""
    model.eval()
    device = next(model.parameters()).device
    out = [model(x[i : i + batch_size].to(device)).float().cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(out).numpy()


def balanced_accuracy(logits: np.ndarray, labels: np.ndarray, num_classes: int) -> float:
    pred = logits.argmax(1)
    recalls = [float((pred[labels == c] == c).mean()) for c in range(num_classes) if (labels == c).any()]
    return float(np.mean(recalls)) if recalls else float("nan")


def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    flip = torch.rand(x.shape[0], generator=gen) < 0.5
    x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
    pad = max(1, x.shape[-1] // 16)
    padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    dy, dx = (int(v) for v in torch.randint(0, 2 * pad + 1, (2,), generator=gen))
    return padded[:, :, dy : dy + x.shape[2], dx : dx + x.shape[3]]


def _epoch_indices(y: torch.Tensor, balance: str, gen: torch.Generator, num_classes: int) -> torch.Tensor:
    n = len(y)
    if balance == "sampler":
        counts = torch.bincount(y, minlength=num_classes).float().clamp(min=1)
        weights = (1.0 / counts)[y]
        return torch.multinomial(weights, n, replacement=True, generator=gen)
    return torch.randperm(n, generator=gen)


def _class_weights(y: torch.Tensor, num_classes: int) -> torch.Tensor:
    counts = torch.bincount(y, minlength=num_classes).float()
    w = torch.where(counts > 0, counts.sum() / (num_classes * counts.clamp(min=1)), torch.zeros_like(counts))
    return w


def _optimizer(model: nn.Module, s: TrainSettings) -> torch.optim.Optimizer:
    if s.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=s.lr, momentum=0.9, weight_decay=s.weight_decay, nesterov=True)
    return torch.optim.AdamW(model.parameters(), lr=s.lr, weight_decay=s.weight_decay)


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float,
                      sample_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Hinton KD (KL at temperature T, scaled by T^2); with ``sample_weights``, their weighted mean over the batch
    (normalised like weighted cross-entropy: by the sum of the weights)."""
    t = temperature
    per_sample = F.kl_div(F.log_softmax(student / t, 1), F.softmax(teacher / t, 1), reduction="none").sum(1) * t * t
    if sample_weights is None:
        return per_sample.mean()
    return (per_sample * sample_weights).sum() / sample_weights.sum().clamp(min=1e-12)


def selection_rule(settings: TrainSettings, teacher: nn.Module | None, val: TensorData, num_classes: int,
                   reference: float | None = None) -> SelectionRule:
    """The settings' rule; for ``worst-class`` the reference is ``reference`` or the teacher's on ``val``."""
    if settings.select == "worst-class" and reference is None and teacher is not None:
        reference = worst_class_sensitivity(predict_logits(teacher, val.x), val.y.numpy(), num_classes)
    return SelectionRule(settings.select, settings.worst_class_margin, reference)


def evaluate(model: nn.Module, val: TensorData, num_classes: int) -> dict[str, float]:
    """Validation balanced accuracy, worst-class sensitivity and accuracy."""
    logits, labels = predict_logits(model, val.x), val.y.numpy()
    return {BAL_ACC: balanced_accuracy(logits, labels, num_classes),
            WORST: worst_class_sensitivity(logits, labels, num_classes),
            "val_accuracy": float((logits.argmax(1) == labels).mean())}


def train_model(
    model: nn.Module,
    train: TensorData,
    val: TensorData,
    num_classes: int,
    settings: TrainSettings,
    teacher: nn.Module | None = None,
    after_backward: list[AfterBackward] | None = None,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    reference_worst_class: float | None = None,
) -> TrainResult:
    """Train ``model`` and return it with the weights of the epoch the selection rule keeps (on ``val``).

    ``reference_worst_class``: the dense model's validation worst-class sensitivity for ``select="worst-class"``
    (default: measured on the teacher)."""
    start = time.perf_counter()
    device = resolve_device(settings.device)
    distributed = dist_utils.init_if_needed(device)
    torch.manual_seed(settings.seed)
    model = model.to(device)
    if teacher is not None:
        teacher = teacher.to(device).eval()
    net: nn.Module = model
    if distributed:
        net = torch.nn.parallel.DistributedDataParallel(model)
    opt = _optimizer(model, settings)
    steps_per_epoch = max(1, math.ceil(len(train) / (settings.batch_size * dist_utils.world_size())))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, settings.epochs * steps_per_epoch))
    weights = _class_weights(train.y, num_classes).to(device) if settings.balance == "weighted-loss" else None
    # with the sampler the batches are balanced already: weighting KD again would count the rare class twice
    kd_weights = _class_weights(train.y, num_classes).to(device) if (
        settings.kd_weighting == "class" and settings.balance != "sampler") else None
    rule = selection_rule(settings, teacher, val, num_classes, reference_worst_class)
    gen = torch.Generator().manual_seed(settings.seed)
    result = TrainResult(model=model, epochs_planned=settings.epochs, selection=rule.summary())
    best_state = copy.deepcopy(model.state_dict())
    best: dict[str, float] | None = None
    stale = 0
    if settings.epochs == 0:
        result.best_val_balanced_accuracy = evaluate(model, val, num_classes)[BAL_ACC]
    for epoch in range(settings.epochs):
        net.train()
        order = _epoch_indices(train.y, settings.balance, gen, num_classes)
        order = order[dist_utils.rank() :: dist_utils.world_size()]
        total, seen = 0.0, 0
        for i in range(0, len(order), settings.batch_size):
            idx = order[i : i + settings.batch_size]
            if len(idx) < 2:
                continue
            xb, yb = train.x[idx], train.y[idx]
            if settings.augment:
                xb = _augment(xb, gen)
            xb, yb = xb.to(device), yb.to(device)
            logits = net(xb)
            loss = F.cross_entropy(logits, yb, weight=weights)
            if teacher is not None and settings.alpha > 0:
                with torch.no_grad():
                    t_logits = teacher(xb)
                kd = distillation_loss(logits, t_logits, settings.temperature,
                                       kd_weights[yb] if kd_weights is not None else None)
                loss = (1 - settings.alpha) * loss + settings.alpha * kd
            opt.zero_grad(set_to_none=True)
            loss.backward()
            for hook in after_backward or []:
                hook(model)
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
            seen += len(idx)
        result.samples_seen += seen * dist_utils.world_size()
        record = {"epoch": epoch + 1, "train_loss": total / max(1, seen), **evaluate(model, val, num_classes),
                  "lr": float(sched.get_last_lr()[0])}
        result.history.append(record)
        if on_epoch is not None:
            on_epoch(record)
        if improves(rule, record, best):
            best, stale, result.best_epoch = record, 0, epoch + 1
            best_state = copy.deepcopy(model.state_dict())
        else:
            stale += 1
            if stale >= settings.patience:
                break
    if settings.epochs > 0 and best is not None:
        model.load_state_dict(best_state)
        result.best_val_balanced_accuracy = best[BAL_ACC]
        result.selection = {**result.selection, "reason": rule.reason(best),
                            "best_val_worst_class_sensitivity": best[WORST]}
    result.seconds = time.perf_counter() - start
    return result
