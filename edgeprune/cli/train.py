"""`edgeprune train`: train a zoo or user model on a dataset (also under torchrun with DDP)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgeprune.cli._common import console, handle_errors
from edgeprune.cli._options import (
    BalanceOpt,
    BatchOpt,
    ConfigOpt,
    DataOpt,
    DeviceOpt,
    DicomWindowOpt,
    EpochsOpt,
    ImageSizeOpt,
    LrOpt,
    MaxTrainOpt,
    ModelOpt,
    PretrainedOpt,
    SeedOpt,
    WidthOpt,
    overrides,
)
from edgeprune.config import load_config


@handle_errors
def train(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="where to write the trained weights (.pt)"),
    ] = Path("dense.pt"),
    config: ConfigOpt = None, model: ModelOpt = None, pretrained: PretrainedOpt = None, width_mult: WidthOpt = None,
    data: DataOpt = None, image_size: ImageSizeOpt = None, max_train: MaxTrainOpt = None, epochs: EpochsOpt = None,
    dicom_window: DicomWindowOpt = None,
    lr: LrOpt = None, batch_size: BatchOpt = None, balance: BalanceOpt = None, train_device: DeviceOpt = None,
    seed: SeedOpt = None,
) -> None:
    """Train a model; the weights feed `edgeprune build --weights`. Runs under `torchrun -m edgeprune train` too."""
    from edgeprune.pipeline.standalone import train_checkpoint
    from edgeprune.preflight import check_build
    from edgeprune.train import distributed

    cfg = load_config(config, overrides(
        model=model, pretrained=pretrained, width_mult=width_mult, data=data, image_size=image_size,
        dicom_window=dicom_window,
        max_train=max_train, epochs=epochs, lr=lr, batch_size=batch_size, balance=balance, train_device=train_device,
        seed=seed))
    check_build(cfg, stages=("train",))
    summary = train_checkpoint(cfg, out, console)
    if distributed.is_main():
        test = summary["test"]
        console.print(f"wrote {out} (world size {summary['world_size']}, ranks_in_sync={summary['ranks_in_sync']}): "
                      f"test balanced accuracy "
                      f"{test['balanced_accuracy']:.3f}, accuracy {test['accuracy']:.3f}")
        console.print(f"Next: edgeprune build --model {cfg.model.name} --weights {out} --data {cfg.data.source}")
