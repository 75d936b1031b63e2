"""The build stages. Each reads its inputs from the run directory, so a rerun can skip finished ones, and returns
its typed outcome (``edgeprune.rundir.outcomes``), recorded in the manifest as the stage's summary."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import torch

from edgeprune.pipeline.checkpoints import load_checkpoint, save_checkpoint, save_exported_program
from edgeprune.pipeline.context import BuildContext
from edgeprune.pipeline.recovery import recover, train_settings
from edgeprune.rundir.outcomes import (
    ExportedArtifact,
    ExportOutcome,
    FinetuneOutcome,
    ModelMetrics,
    Outcome,
    ProfileOutcome,
    PruneOutcome,
    TrainOutcome,
    VerifyOutcome,
)
from edgeprune.rundir.paths import ARTIFACTS_DIR, DENSE, FINETUNED, FINETUNED_PT2, PRUNED
from edgeprune.train import predict_logits, train_model


class Stage(ABC):
    name: ClassVar[str]
    title: ClassVar[str]

    def params(self, ctx: BuildContext) -> dict[str, Any]:
        """Configuration that changes this stage's result (folded into the cache key)."""
        return {}

    def input_files(self, ctx: BuildContext) -> list[str]:
        return []

    @abstractmethod
    def run(self, ctx: BuildContext) -> tuple[Outcome, list[str]]:
        """Do the work; return (the stage's outcome, relative output paths)."""


def _log_epoch(ctx: BuildContext, label: str):
    def log(rec: dict[str, float]) -> None:
        ctx.console.print(
            f"  [dim]{label} epoch {int(rec['epoch'])}: loss {rec['train_loss']:.3f}, "
            f"val balanced acc {rec['val_balanced_accuracy']:.3f}[/dim]"
        )

    return log


def _test_summary(ctx: BuildContext, model: torch.nn.Module) -> dict[str, Any]:
    from edgeprune.metrics import classification_metrics

    test = ctx.data.test.read("report: test metrics of a finished PyTorch model (nothing chooses from them)")
    logits = predict_logits(model, test.x)
    return classification_metrics(logits, test.y.numpy(), ctx.data.num_classes).to_dict()


def _test_metrics(ctx: BuildContext, model: torch.nn.Module) -> ModelMetrics:
    return ModelMetrics.model_validate(_test_summary(ctx, model))


class TrainStage(Stage):
    name = "train"
    title = "Train or load the dense model"

    def params(self, ctx: BuildContext) -> dict[str, Any]:
        return {"model": ctx.cfg.model.model_dump(), "train": ctx.cfg.train.model_dump(), "seed": ctx.cfg.seed}

    def run(self, ctx: BuildContext) -> tuple[TrainOutcome, list[str]]:
        from edgeprune.models import resolve_model

        data = ctx.data
        if ctx.cfg.model.weights:
            model = resolve_model(ctx.cfg.model.name, num_classes=data.num_classes,
                                  in_channels=data.contract.in_channels, weights=ctx.cfg.model.weights,
                                  **ctx.model_kwargs())
            outcome = TrainOutcome(trained=False)
        else:
            torch.manual_seed(ctx.cfg.seed)
            model = ctx.fresh_model(pretrained=ctx.cfg.model.pretrained)
            result = train_model(model, data.train, data.val, data.num_classes, train_settings(ctx, ctx.cfg.train),
                                 on_epoch=_log_epoch(ctx, "train"))
            model = result.model
            outcome = TrainOutcome.model_validate({"trained": True, **result.summary()})
        outcome.test = _test_metrics(ctx, model)
        save_checkpoint(ctx.path(DENSE), model, meta={"stage": "train"})
        return outcome, [DENSE]


class PruneStage(Stage):
    name = "prune"
    title = "Prune channels to the budget"

    def params(self, ctx: BuildContext) -> dict[str, Any]:
        out = {"prune": ctx.cfg.prune.model_dump(), "calib": ctx.data.calib_ids, "seed": ctx.cfg.seed}
        if ctx.cfg.prune.latency_reduction is not None:  # the lane the latency table is measured on
            from edgeprune.latency.source import latency_source

            out["latency_lane"] = latency_source(ctx.cfg)
        if ctx.cfg.searches():  # the search recovers inside its trials and checks the gate's limits on val
            out.update(search=ctx.cfg.search.model_dump(exclude={"jobs", "ray_address"}),
                       finetune=ctx.cfg.finetune.model_dump(), verify=ctx.cfg.verify.model_dump())
        return out

    def input_files(self, ctx: BuildContext) -> list[str]:
        return [DENSE]

    def run(self, ctx: BuildContext) -> tuple[PruneOutcome, list[str]]:
        from edgeprune.pipeline.pruning import run_pruning

        if ctx.cfg.searches():
            from edgeprune.search.stage import searched_prune

            return searched_prune(ctx)
        dense, _ = load_checkpoint(ctx.path(DENSE), ctx.fresh_model(), ctx.example_input)
        result = run_pruning(ctx, dense)
        save_checkpoint(ctx.path(PRUNED), result.model, result.plan, meta={"stage": "prune"})
        outcome = PruneOutcome.model_validate(result.summary())
        outcome.test_before_finetune = _test_metrics(ctx, result.model)
        return outcome, [PRUNED]


class FinetuneStage(Stage):
    name = "finetune"
    title = "Recover accuracy (fine-tune, distil from the dense model)"

    def params(self, ctx: BuildContext) -> dict[str, Any]:
        return {"finetune": ctx.cfg.finetune.model_dump(), "train": ctx.cfg.train.model_dump(), "seed": ctx.cfg.seed}

    def input_files(self, ctx: BuildContext) -> list[str]:
        return [DENSE, PRUNED]

    def run(self, ctx: BuildContext) -> tuple[FinetuneOutcome, list[str]]:
        dense, _ = load_checkpoint(ctx.path(DENSE), ctx.fresh_model(), ctx.example_input)
        model, plan = load_checkpoint(ctx.path(PRUNED), ctx.fresh_model(), ctx.example_input)
        recovery = ctx.outcomes.prune.recovery if ctx.outcomes.prune else "finetune"
        summary: dict[str, Any] = {"pruned": not plan.is_empty(), "recovery": recovery}
        result = None
        if recovery == "searched":  # the search's trials recover briefly; the chosen one gets the full recovery
            summary["continued_from"] = "the search's chosen trial"
        if not plan.is_empty():
            result = recover(ctx, model, recovery, dense, on_epoch=_log_epoch(ctx, recovery))
        if result is None:
            summary.setdefault("skipped_reason", "nothing to recover" if plan.is_empty() else "no fine-tuning epochs")
        else:
            model = result.model
            summary.update(result.summary())
        outcome = FinetuneOutcome.model_validate(summary)
        outcome.test = _test_metrics(ctx, model)
        save_checkpoint(ctx.path(FINETUNED), model, plan, meta={"stage": "finetune"})
        save_exported_program(ctx.path(FINETUNED_PT2), model, ctx.example_input)
        return outcome, [FINETUNED, FINETUNED_PT2]


class ExportStage(Stage):
    name = "export"
    title = "Convert to the deployment formats"

    def params(self, ctx: BuildContext) -> dict[str, Any]:
        return {"export": ctx.cfg.export.model_dump(), "contract": ctx.data.contract.model_dump(),
                "calib": ctx.data.calib_ids}

    def input_files(self, ctx: BuildContext) -> list[str]:
        return [DENSE, FINETUNED]

    def variants(self, ctx: BuildContext) -> list[tuple[str, str, list[str]]]:
        """(variant, checkpoint, precisions): the pruned model in every precision, the dense one for comparison."""
        precisions = list(ctx.cfg.export.precisions)
        out = [("pruned", FINETUNED, precisions)]
        if ctx.cfg.export.export_dense:
            dense_prec = [p for p in ("fp32", "int8") if p in precisions] or precisions[:1]
            out.append(("dense", DENSE, dense_prec))
        return out

    def run(self, ctx: BuildContext) -> tuple[ExportOutcome, list[str]]:
        from edgeprune.budget import count
        from edgeprune.export import ExportRequest, get_exporter

        cfg, data = ctx.cfg, ctx.data
        records, outputs = [], []
        metadata = {"preprocessing": data.contract.model_dump(), "labels": data.contract.class_names,
                    "run": ctx.run_dir.name, "producer": "edgeprune"}
        for variant, ckpt, precisions in self.variants(ctx):
            model, _ = load_checkpoint(ctx.path(ckpt), ctx.fresh_model(), ctx.example_input)
            macs, params = count(model, ctx.example_input)
            for target in cfg.export.targets:
                exporter = get_exporter(target, cfg.export.backend if target == "tflite" else None)
                for precision in precisions:
                    if precision not in exporter.precisions:
                        continue
                    ctx.console.print(f"  [dim]export {variant} {target} {precision}[/dim]")
                    # onnx2tf calibrates once and writes every precision from that run
                    calib = precision in exporter.needs_calibration or exporter.backend == "onnx2tf"
                    req = ExportRequest(
                        model=model, example_input=ctx.example_input, precision=precision,
                        out_dir=ctx.path(ARTIFACTS_DIR), name=f"{variant}_{exporter.format}_{precision}",
                        calib_inputs=data.calib_inputs if calib else None,
                        calib_ids=data.calib_ids if calib else None,
                        io_layout=cfg.export.io_layout.upper(), metadata=metadata,
                        io_dtype=cfg.export.io_dtype if precision in exporter.io_dtype_options else None,
                    )
                    rec = exporter.export(req).model_dump()
                    rec["file"] = ctx.rel(Path(req.out_dir) / Path(rec["file"]).name)
                    rec.update(variant=variant, checkpoint=ckpt, macs=macs, params=params)
                    records.append(ExportedArtifact.model_validate(rec))
                    outputs.append(rec["file"])
        return ExportOutcome(artifacts=records), outputs


class VerifyStage(Stage):
    name = "verify"
    title = "Verify every artifact in its runtime"

    def params(self, ctx: BuildContext) -> dict[str, Any]:
        return {"verify": ctx.cfg.verify.model_dump(), "artifacts": [a.sha256 for a in ctx.outcomes.exported]}

    def input_files(self, ctx: BuildContext) -> list[str]:
        return [DENSE, FINETUNED] + [a.file for a in ctx.outcomes.exported]

    def run(self, ctx: BuildContext) -> tuple[VerifyOutcome, list[str]]:
        from edgeprune.pipeline.verification import verify_artifacts

        outcome = VerifyOutcome.model_validate(verify_artifacts(ctx, [a.summary() for a in ctx.outcomes.exported]))
        return outcome, outcome.repaired_files()


class ProfileStage(Stage):
    name = "profile"
    title = "Profile latency and memory"

    def params(self, ctx: BuildContext) -> dict[str, Any]:
        return {"profile": ctx.cfg.profile.model_dump(), "artifacts": [a.sha256 for a in ctx.outcomes.exported]}

    def input_files(self, ctx: BuildContext) -> list[str]:
        return [a.file for a in ctx.outcomes.exported]

    def run(self, ctx: BuildContext) -> tuple[ProfileOutcome, list[str]]:
        from edgeprune.devices import BenchSpec, open_device

        p = ctx.cfg.profile
        bench = BenchSpec(threads=p.thread_counts(), warmup=p.warmup, runs=p.runs)
        measurements = []
        for spec in p.devices:
            device = open_device(spec)
            for art in ctx.outcomes.exported:
                if art.format != "tflite":
                    continue
                ctx.console.print(f"  [dim]profile {art.name} on {spec}[/dim]")
                if not device.can_time:  # an emulated lane checks parity instead, on real validation images
                    x = ctx.data.val.x[:8].numpy()  # (the test split is kept for the final verdict)
                    bench.parity_inputs = x.transpose(0, 2, 3, 1) if art.io_layout == "NHWC" else x
                    bench.parity_inputs_label = "validation images"
                got = device.benchmark(ctx.path(art.file), bench, art.name, art.sha256)
                measurements += [m.model_dump(mode="json") for m in got]
        return ProfileOutcome(measurements=measurements, pruning_efficiency=_efficiency(ctx, measurements)), []


def _efficiency(ctx: BuildContext, measurements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Compare pruned vs dense latency with their MAC ratio, precision by precision ("pruned but not faster")."""
    from edgeprune.devices.efficiency import check_pruning_efficiency
    from edgeprune.schemas import Measurement

    arts = {a.name: a for a in ctx.outcomes.exported}
    pairs = [(n, n.replace("dense_", "pruned_", 1)) for n in arts
             if n.startswith("dense_") and n.replace("dense_", "pruned_", 1) in arts]
    results = check_pruning_efficiency([Measurement.model_validate(m) for m in measurements],
                                       {n: a.macs or 0 for n, a in arts.items()}, pairs)
    for r in results:
        if r.flagged:
            ctx.console.print(f"  [yellow]{r.message}[/yellow]")
    return [r.as_dict() for r in results]


STAGES: list[Stage] = [TrainStage(), PruneStage(), FinetuneStage(), ExportStage(), VerifyStage(), ProfileStage()]
STAGE_NAMES = [s.name for s in STAGES]
