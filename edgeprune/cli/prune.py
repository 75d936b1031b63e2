"""`edgeprune prune`: prune a trained model to a budget and recover accuracy (no conversion)."""

from __future__ import annotations

import sys

from edgeprune.cli._common import console, handle_errors
from edgeprune.cli._options import (
    ConfigOpt,
    CriterionOpt,
    CritOptionOpt,
    DataOpt,
    DicomWindowOpt,
    DistillOpt,
    FlopsOpt,
    FtEpochsOpt,
    ImageSizeOpt,
    LatencyDeviceOpt,
    LatencyOpt,
    MinChOpt,
    ModelOpt,
    NameOpt,
    OutOpt,
    ParamsOpt,
    RoundOpt,
    SeedOpt,
    StepsOpt,
    WeightsOpt,
    WidthOpt,
    overrides,
)
from edgeprune.config import load_config, parse_options


@handle_errors
def prune(
    config: ConfigOpt = None, model: ModelOpt = None, weights: WeightsOpt = None, width_mult: WidthOpt = None,
    data: DataOpt = None, image_size: ImageSizeOpt = None, criterion: CriterionOpt = None,
    dicom_window: DicomWindowOpt = None,
    option: CritOptionOpt = None, flops_reduction: FlopsOpt = None, params_reduction: ParamsOpt = None,
    latency_reduction: LatencyOpt = None, latency_device: LatencyDeviceOpt = None,
    round_to: RoundOpt = None, min_channels: MinChOpt = None, iterative_steps: StepsOpt = None,
    finetune_epochs: FtEpochsOpt = None, distill: DistillOpt = None, seed: SeedOpt = None, out: OutOpt = None,
    name: NameOpt = None,
) -> None:
    """Prune (and fine-tune) into a run directory: models/finetuned.pt (plan + weights) and .pt2."""
    from edgeprune.api import run, run_dir_for

    cfg = load_config(config, overrides(
        model=model, weights=weights, width_mult=width_mult, data=data, image_size=image_size, criterion=criterion,
        dicom_window=dicom_window,
        options=parse_options(option), flops_reduction=flops_reduction, params_reduction=params_reduction,
        latency_reduction=latency_reduction, latency_device=latency_device,
        round_to=round_to, min_channels=min_channels, iterative_steps=iterative_steps,
        finetune_epochs=finetune_epochs, distill=distill, seed=seed, name=name))
    run_dir = run_dir_for(cfg, out)
    report = run(cfg, run_dir, to_stage="finetune", console=console, command=["edgeprune", *sys.argv[1:]]).report
    assert report.prune is not None and report.pruned_test is not None
    console.print(f"pruned: {report.prune.achieved_reduction:.1%} {report.prune.budget['kind']} reduction, "
                  f"test balanced accuracy {report.pruned_test.balanced_accuracy:.3f}")
    console.print(f"Next: edgeprune export {run_dir} --target tflite")
