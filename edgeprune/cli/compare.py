"""`edgeprune compare`: the criteria bake-off at the same budgets, mean ± std over seeds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from edgeprune.budget import Budget, budget_kind
from edgeprune.cli._common import console, handle_errors, split_list
from edgeprune.cli._options import (
    ConfigOpt,
    DataOpt,
    DicomWindowOpt,
    DistillOpt,
    EpochsOpt,
    FtEpochsOpt,
    ImageSizeOpt,
    MaxTrainOpt,
    ModelOpt,
    PretrainedOpt,
    WeightsOpt,
    WidthOpt,
    overrides,
)
from edgeprune.config import load_config
from edgeprune.errors import EdgepruneError


@handle_errors
def compare(
    criteria: Annotated[str, typer.Option(
        "--criteria",
        help="comma list, e.g. beta-rank,l1,random; options per criterion: beta-rank:beta_mode=paper")] = "l1,random",
    flops_reduction: Annotated[str | None, typer.Option("--flops-reduction", help="comma list, e.g. 0.45,0.58")] = None,
    params_reduction: Annotated[str | None, typer.Option("--params-reduction", help="comma list")] = None,
    seeds: Annotated[int, typer.Option("--seeds", help="number of seeds (0..N-1)")] = 3,
    no_scratch: Annotated[bool, typer.Option("--no-scratch", help="skip the train-from-scratch baseline")] = False,
    out: Annotated[Path, typer.Option("--out", "-o", help="output directory")] = Path("runs/compare"),
    config: ConfigOpt = None, model: ModelOpt = None, weights: WeightsOpt = None, pretrained: PretrainedOpt = None,
    width_mult: WidthOpt = None, data: DataOpt = None, image_size: ImageSizeOpt = None, max_train: MaxTrainOpt = None,
    dicom_window: DicomWindowOpt = None,
    epochs: EpochsOpt = None, finetune_epochs: FtEpochsOpt = None, distill: DistillOpt = None,
) -> None:
    """Run every criterion at the same budgets from the same trained model; write compare.json and compare.png."""
    from edgeprune.pipeline.compare import CompareSpec, run_compare

    kind = budget_kind(flops_reduction, params_reduction) or "flops"
    raw = split_list(params_reduction or flops_reduction or "0.5") or []
    try:
        reductions = [Budget(kind, float(v)).reduction for v in raw]
    except ValueError:
        raise EdgepruneError(f"reductions must be numbers, got {raw}",
                             "write e.g. --flops-reduction 0.45,0.58") from None
    cfg = load_config(config, overrides(model=model, weights=weights, pretrained=pretrained, width_mult=width_mult,
                                        data=data, image_size=image_size, max_train=max_train, epochs=epochs,
                                        dicom_window=dicom_window,
                                        finetune_epochs=finetune_epochs, distill=distill))
    spec = CompareSpec(criteria=split_list(criteria) or [], reductions=reductions, seeds=list(range(seeds)), kind=kind,
                       scratch_baseline=not no_scratch)
    payload = run_compare(cfg, spec, out, console)
    table = Table(title=f"bake-off: {payload['model']} on {payload['data']} (test balanced accuracy, mean ± std)")
    for col in ("criterion", "target", "achieved", "bal. acc", "macro-F1", "accuracy"):
        table.add_column(col)
    for t in payload["table"]:
        table.add_row(t["criterion"], f"-{t['target_reduction']:.0%}", f"-{t['achieved_reduction']['mean']:.1%}",
                      f"{100 * t['balanced_accuracy']['mean']:.1f} ± {100 * t['balanced_accuracy']['std']:.1f}",
                      f"{100 * t['macro_f1']['mean']:.1f} ± {100 * t['macro_f1']['std']:.1f}",
                      f"{100 * t['accuracy']['mean']:.1f} ± {100 * t['accuracy']['std']:.1f}")
    console.print(table)
    dense = payload["dense"]["test"]["balanced_accuracy"]
    console.print(f"dense model: balanced accuracy {100 * dense:.1f}%. Wrote {out}/compare.json and {out}/compare.png")
