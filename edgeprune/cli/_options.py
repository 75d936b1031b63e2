"""Annotated option aliases shared by the commands; each maps to a dotted key of BuildConfig."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgeprune.config import overrides  # noqa: F401 - re-exported for the commands

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="edgeprune.toml whose keys mirror these flags")]
ModelOpt = Annotated[
    str | None, typer.Option("--model", "-m", help="zoo name, path/to/file.py:factory, or torchvision:NAME"),
]
WeightsOpt = Annotated[str | None, typer.Option("--weights", help="trained state-dict checkpoint (skips training)")]
PretrainedOpt = Annotated[bool | None, typer.Option("--pretrained/--no-pretrained", help="start from shipped weights")]
WidthOpt = Annotated[float | None, typer.Option("--width-mult", help="model width multiplier")]
DataOpt = Annotated[str | None, typer.Option(
    "--data", "-d", help="'embedded', a MedMNIST .npz, an image or DICOM folder, or a labels .csv of DICOM files")]
DicomWindowOpt = Annotated[str | None, typer.Option(
    "--dicom-window", help="DICOM: CENTER,WIDTH window replacing the files' own (e.g. 40,400)")]
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
LatencyOpt = Annotated[float | None, typer.Option(
    "--latency-reduction", help="fraction of the latency measured on --latency-device to remove, e.g. 0.5")]
LatencyDeviceOpt = Annotated[str | None, typer.Option(
    "--latency-device", help="lane the latency table is measured on (default: first --device, else host)")]
RoundOpt = Annotated[int | None, typer.Option("--round-to", help="keep channel counts a multiple of this")]
MinChOpt = Annotated[int | None, typer.Option("--min-channels", help="floor on channels kept per layer")]
StepsOpt = Annotated[int | None, typer.Option("--iterative-steps", help="gradual pruning in k steps (cubic schedule)")]
FtEpochsOpt = Annotated[int | None, typer.Option("--finetune-epochs", help="fine-tuning epochs after pruning")]
DistillOpt = Annotated[bool | None, typer.Option("--distill/--no-distill", help="distil from the unpruned model")]
OutOpt = Annotated[Path | None, typer.Option("--out", "-o", help="run directory (default runs/<name>)")]
NameOpt = Annotated[str | None, typer.Option("--name", help="run name")]
ObjectiveOpt = Annotated[str | None, typer.Option("--objective", help="search: minimise latency | size | macs")]
LatencyBudgetOpt = Annotated[float | None, typer.Option("--latency-budget", help="search: p50 ms budget (1 thread)")]
SizeBudgetOpt = Annotated[float | None, typer.Option("--size-budget", help="search: fp32 .tflite size budget in KB")]
MinSensOpt = Annotated[float | None, typer.Option("--min-class-sensitivity",
                                                  help="search contract: floor (%) on every class's sensitivity")]
SearchCritOpt = Annotated[str | None, typer.Option("--search-criteria", help="search: comma list of criteria")]
TrialsOpt = Annotated[int | None, typer.Option("--trials", help="search: number of trials")]
JobsOpt = Annotated[int | None, typer.Option("--jobs", "-j", help="search: trials in N local processes")]
RayOpt = Annotated[str | None, typer.Option("--ray-address", help="search: run trials on this Ray cluster")]
