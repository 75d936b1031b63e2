"""Annotated option aliases shared by the commands; each maps to a dotted key of BuildConfig."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from edgeprune.budget import Budget

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="edgeprune.toml whose keys mirror these flags")]
ModelOpt = Annotated[str | None, typer.Option("--model", "-m", help="zoo name, path/to/file.py:factory, or torchvision:NAME")]
WeightsOpt = Annotated[str | None, typer.Option("--weights", help="trained state-dict checkpoint (skips training)")]
PretrainedOpt = Annotated[bool | None, typer.Option("--pretrained/--no-pretrained", help="start from shipped weights")]
WidthOpt = Annotated[float | None, typer.Option("--width-mult", help="model width multiplier")]
DataOpt = Annotated[str | None, typer.Option("--data", "-d", help="'embedded', a MedMNIST .npz, or an image folder")]
ImageSizeOpt = Annotated[int | None, typer.Option("--image-size", help="model input size in pixels")]
MaxTrainOpt = Annotated[int | None, typer.Option("--max-train", help="cap on training images (quick runs)")]
EpochsOpt = Annotated[int | None, typer.Option("--epochs", help="training epochs for the dense model")]
LrOpt = Annotated[float | None, typer.Option("--lr", help="training learning rate")]
BatchOpt = Annotated[int | None, typer.Option("--batch-size", help="training batch size")]
BalanceOpt = Annotated[str | None, typer.Option("--balance", help="weighted-loss | sampler | none")]
DeviceOpt = Annotated[str | None, typer.Option("--train-device", help="auto | cpu | cuda")]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="seed for data splits, training and calibration")]
CriterionOpt = Annotated[str | None, typer.Option("--criterion", help="pruning criterion (edgeprune list criteria)")]
CritOptionOpt = Annotated[list[str] | None, typer.Option("--option", help="criterion option key=value (repeatable)")]
FlopsOpt = Annotated[float | None, typer.Option("--flops-reduction", help="fraction of MACs to remove, e.g. 0.5")]
ParamsOpt = Annotated[float | None, typer.Option("--params-reduction", help="fraction of parameters to remove")]
RoundOpt = Annotated[int | None, typer.Option("--round-to", help="keep channel counts a multiple of this")]
MinChOpt = Annotated[int | None, typer.Option("--min-channels", help="floor on channels kept per layer")]
StepsOpt = Annotated[int | None, typer.Option("--iterative-steps", help="gradual pruning in k steps (cubic schedule)")]
FtEpochsOpt = Annotated[int | None, typer.Option("--finetune-epochs", help="fine-tuning epochs after pruning")]
DistillOpt = Annotated[bool | None, typer.Option("--distill/--no-distill", help="distil from the unpruned model")]
OutOpt = Annotated[Path | None, typer.Option("--out", "-o", help="run directory (default runs/<name>)")]
NameOpt = Annotated[str | None, typer.Option("--name", help="run name")]

FLAG_TO_KEY = {
    "model": "model.name", "weights": "model.weights", "pretrained": "model.pretrained",
    "width_mult": "model.width_mult", "data": "data.source", "image_size": "data.image_size",
    "max_train": "data.max_train", "epochs": "train.epochs", "lr": "train.lr", "batch_size": "train.batch_size",
    "balance": "train.balance", "train_device": "train.device", "seed": "seed", "criterion": "prune.criterion",
    "flops_reduction": "prune.flops_reduction", "params_reduction": "prune.params_reduction",
    "round_to": "prune.round_to", "min_channels": "prune.min_channels", "iterative_steps": "prune.iterative_steps",
    "finetune_epochs": "finetune.epochs", "distill": "finetune.distill", "name": "name",
    "targets": "export.targets", "precisions": "export.precisions", "backend": "export.backend",
    "io_layout": "export.io_layout", "io_dtype": "export.io_dtype", "calib_size": "data.calib_size", "profile_devices": "profile.devices",
    "threads": "profile.threads", "runs": "profile.runs", "max_bal_acc_drop": "verify.max_bal_acc_drop",
    "max_class_sensitivity_drop": "verify.max_class_sensitivity_drop", "options": "prune.options",
}


def overrides(**flags: Any) -> dict[str, Any]:
    """Map the given (non-None) flag values to dotted config keys."""
    out: dict[str, Any] = {}
    for flag, value in flags.items():
        if value is None:
            continue
        out[FLAG_TO_KEY[flag]] = value
    params = out.get("prune.params_reduction")
    if params is not None and "prune.flops_reduction" not in out:  # replaces the config's flops budget
        out.update({f"prune.{key}": value for key, value in Budget("params", params).options().items()})
    return out
