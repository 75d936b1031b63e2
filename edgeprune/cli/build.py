"""`edgeprune build`: train or load, prune, recover, convert, verify, profile, report."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from edgeprune.cli._common import (
    console,
    fail_if_rejected,
    handle_errors,
    print_next_steps,
    print_summary,
    print_why_no_pruned_model_passes,
    split_list,
)
from edgeprune.cli._options import (
    BalanceOpt,
    BatchOpt,
    ConfigOpt,
    CriterionOpt,
    CritOptionOpt,
    DataOpt,
    DeviceOpt,
    DicomWindowOpt,
    DistillOpt,
    EpochsOpt,
    FlopsOpt,
    FtEpochsOpt,
    ImageSizeOpt,
    JobsOpt,
    LatencyBudgetOpt,
    LatencyDeviceOpt,
    LatencyOpt,
    LrOpt,
    MaxTrainOpt,
    MinChOpt,
    MinSensOpt,
    ModelOpt,
    NameOpt,
    ObjectiveOpt,
    OutOpt,
    ParamsOpt,
    PretrainedOpt,
    RayOpt,
    RoundOpt,
    SearchCritOpt,
    SeedOpt,
    SizeBudgetOpt,
    StepsOpt,
    TrialsOpt,
    WeightsOpt,
    WidthOpt,
    overrides,
)
from edgeprune.config import load_config, parse_options


@handle_errors
def build(
    target: Annotated[str | None, typer.Option("--target", "-t", help="comma list: tflite,coreml,onnx")] = None,
    precisions: Annotated[
        str | None, typer.Option("--precisions", help="comma list: fp32,fp16,dynamic-int8,int8"),
    ] = None,
    backend: Annotated[str | None, typer.Option("--backend", help="converter backend, e.g. onnx2tf for tflite")] = None,
    io_layout: Annotated[str | None, typer.Option("--io-layout", help="nchw | nhwc input layout")] = None,
    io_dtype: Annotated[
        str | None, typer.Option("--io-dtype", help="float32 | int8 | uint8 I/O of full-int8 files"),
    ] = None,
    calib_size: Annotated[int | None, typer.Option("--calib-size", help="class-stratified calibration images")] = None,
    config: ConfigOpt = None, model: ModelOpt = None, weights: WeightsOpt = None, pretrained: PretrainedOpt = None,
    width_mult: WidthOpt = None, data: DataOpt = None, image_size: ImageSizeOpt = None, max_train: MaxTrainOpt = None,
    dicom_window: DicomWindowOpt = None,
    epochs: EpochsOpt = None, lr: LrOpt = None, batch_size: BatchOpt = None, balance: BalanceOpt = None,
    train_device: DeviceOpt = None, seed: SeedOpt = None, criterion: CriterionOpt = None,
    option: CritOptionOpt = None, flops_reduction: FlopsOpt = None, params_reduction: ParamsOpt = None,
    latency_reduction: LatencyOpt = None, latency_device: LatencyDeviceOpt = None,
    round_to: RoundOpt = None, min_channels: MinChOpt = None, iterative_steps: StepsOpt = None,
    finetune_epochs: FtEpochsOpt = None, distill: DistillOpt = None,
    device: Annotated[
        str | None, typer.Option("--device", help="profile on: comma list of host, adb[:SERIAL], ..."),
    ] = None,
    threads: Annotated[str | None, typer.Option("--threads", help="profile thread counts, e.g. 1,2")] = None,
    runs: Annotated[int | None, typer.Option("--runs", help="timed runs per profile configuration")] = None,
    max_bal_acc_drop: Annotated[float | None, typer.Option(help="gate: balanced-accuracy drop limit (pp)")] = None,
    max_class_sensitivity_drop: Annotated[
        float | None, typer.Option(help="gate: per-class sensitivity drop limit (pp)"),
    ] = None,
    min_class_sensitivity: MinSensOpt = None, objective: ObjectiveOpt = None, latency_budget: LatencyBudgetOpt = None,
    size_budget: SizeBudgetOpt = None, search_criteria: SearchCritOpt = None, trials: TrialsOpt = None,
    jobs: JobsOpt = None, ray_address: RayOpt = None,
    no_gate: Annotated[bool, typer.Option("--no-gate", help="report gate failures but exit 0")] = False,
    junit_xml: Annotated[
        Path | None, typer.Option("--junit-xml", help="write one JUnit test case per gate and artifact (CI)"),
    ] = None,
    out: OutOpt = None, name: NameOpt = None,
    from_stage: Annotated[str | None, typer.Option("--from", help="rerun from this stage on")] = None,
    force: Annotated[bool, typer.Option("--force", help="rerun every stage")] = False,
) -> None:
    """Build a pruned, converted, verified and profiled model (defaults: the embedded synthetic dataset)."""
    from edgeprune.api import run, run_dir_for

    cfg = load_config(config, overrides(
        targets=split_list(target), precisions=split_list(precisions), backend=backend, io_layout=io_layout,
        io_dtype=io_dtype,
        calib_size=calib_size, model=model, weights=weights, pretrained=pretrained, width_mult=width_mult, data=data,
        dicom_window=dicom_window,
        image_size=image_size, max_train=max_train, epochs=epochs, lr=lr, batch_size=batch_size, balance=balance,
        train_device=train_device, seed=seed, criterion=criterion, options=parse_options(option),
        flops_reduction=flops_reduction, params_reduction=params_reduction, latency_reduction=latency_reduction,
        latency_device=latency_device, round_to=round_to,
        min_channels=min_channels, iterative_steps=iterative_steps, finetune_epochs=finetune_epochs, distill=distill,
        profile_devices=split_list(device), threads=[int(t) for t in split_list(threads) or []] or None, runs=runs,
        max_bal_acc_drop=max_bal_acc_drop, max_class_sensitivity_drop=max_class_sensitivity_drop, name=name,
        min_class_sensitivity=min_class_sensitivity, objective=objective, latency_budget=latency_budget,
        size_budget=size_budget, search_criteria=search_criteria, search_trials=trials, jobs=jobs,
        ray_address=ray_address,
    ))
    run_dir = run_dir_for(cfg, out)
    from edgeprune.search.errors import ContractNotMet

    try:
        result = run(cfg, run_dir, from_stage=from_stage, force=force, console=console,
                     command=["edgeprune", *sys.argv[1:]])
    except ContractNotMet as exc:  # the search found nothing that meets the contract: say so, exit 3
        console.print(f"[bold red]no model meets the contract:[/bold red] {exc.one_line()}", soft_wrap=True)
        raise typer.Exit(ContractNotMet.exit_code) from None
    rows = result.rows()
    print_summary(rows, run_dir)
    console.print(f"\nRun directory: {run_dir}  (report.html, report.json, manifest.json, artifacts/)")
    print_next_steps(run_dir)
    if junit_xml is not None:
        from edgeprune.pipeline.junit import write_junit

        write_junit(rows, junit_xml, fp32_tolerance=cfg.verify.fp32_tolerance)
        console.print(f"JUnit gate results: {junit_xml}")
    print_why_no_pruned_model_passes(result)
    fail_if_rejected(rows, gate=cfg.verify.gate and not no_gate)
