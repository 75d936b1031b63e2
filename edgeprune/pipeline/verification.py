"""Run every artifact in its own runtime on the test split; compare with PyTorch and with the dense model."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from edgeprune.export.repair import RepairInputs
from edgeprune.gate import evaluate_gate
from edgeprune.pipeline.checkpoints import load_checkpoint
from edgeprune.pipeline.context import BuildContext
from edgeprune.train import predict_logits


def repair_inputs(ctx: BuildContext, artifact: dict[str, Any]) -> RepairInputs:
    """What the repair ladder needs for one artifact of this run (its float model, train split, metadata)."""
    from edgeprune.artifacts.tflite_metadata import read_tflite_metadata

    model, _ = load_checkpoint(ctx.path(artifact["checkpoint"]), ctx.fresh_model(), ctx.example_input)
    path = ctx.path(artifact["file"])
    meta = {k: v for k, v in (read_tflite_metadata(path) or {}).items() if k != "export"}
    return RepairInputs(
        model=model, example_input=ctx.example_input, train_x=ctx.data.train.x, train_y=ctx.data.train.y,
        calib_ids=list(artifact.get("calibration_ids") or ctx.data.calib_ids), out_dir=path.parent,
        metadata=meta, seed=ctx.cfg.seed, log=lambda msg: ctx.console.print(f"  [dim]{msg}[/dim]"),
    )  # fmt: skip


def verify_artifacts(ctx: BuildContext, artifacts: list[dict[str, Any]]) -> dict[str, Any]:
    from edgeprune.export.repair import is_repairable, repair_int8
    from edgeprune.metrics import agreement, classification_metrics, paired_bootstrap_delta
    from edgeprune.runtimes import open_session
    from edgeprune.runtimes.coreml import SIMULATED, reference_models

    data, vcfg = ctx.data, ctx.cfg.verify
    x, y, k = data.test.x, data.test.y.numpy(), data.num_classes
    ref_logits: dict[str, np.ndarray] = {}
    ref_models: dict[str, Any] = {}
    for ckpt in sorted({a["checkpoint"] for a in artifacts} | {"models/dense.pt"}):
        model, _ = load_checkpoint(ctx.path(ckpt), ctx.fresh_model(), ctx.example_input)
        ref_models[ckpt] = model
        ref_logits[ckpt] = predict_logits(model, x)
    dense = ref_logits["models/dense.pt"]
    out: dict[str, Any] = {
        "test_size": int(len(y)),
        "reference": {name: classification_metrics(v, y, k).to_dict() for name, v in ref_logits.items()},
        "artifacts": {},
    }
    x_np = x.numpy()
    threads = os.cpu_count() or 1
    # Core ML off macOS runs the package's weights in the PyTorch model it came from
    references = {ctx.path(a["file"]): ref_models[a["checkpoint"]] for a in artifacts}

    def evaluate(path: Path, art: dict[str, Any]) -> dict[str, Any]:
        with reference_models(references):
            session = open_session(path, fmt=art["format"], threads=threads)
        kind = getattr(session, "verification_kind", "runtime")
        logits = np.asarray(session.run(x_np), dtype=np.float32)
        ref = ref_logits[art["checkpoint"]]
        metrics = classification_metrics(logits, y, k)
        delta = paired_bootstrap_delta(y, dense.argmax(1), logits.argmax(1), k, n_boot=vcfg.bootstrap,
                                       seed=ctx.cfg.seed)
        verdict = evaluate_gate(delta, data.contract.class_names, vcfg.max_bal_acc_drop,
                                vcfg.max_class_sensitivity_drop)
        agree = agreement(logits, ref)
        notes = []
        if kind == SIMULATED:
            notes.append("Core ML prediction needs macOS: checked structurally and with the package's decompressed "
                         "weights in a BN-folded PyTorch copy (fp16 activations not simulated)")
        if art["precision"] == "fp32" and agree["max_abs"] > vcfg.fp32_tolerance:
            notes.append(f"fp32 logits differ from PyTorch by {agree['max_abs']:.2e} (> {vcfg.fp32_tolerance:g})")
        return {
            "metrics": metrics.to_dict(), "vs_torch": agree, "vs_dense_float": delta, "verification_kind": kind,
            "gate": verdict.model_dump() if vcfg.gate else {"passed": True, "reasons": ["gate disabled"]},
            "notes": notes,
        }

    float_failed: set[str] = set()  # checkpoints whose fp32 artifact already fails: int8 repair cannot help
    for art in artifacts:
        ctx.console.print(f"  [dim]verify {art['name']}[/dim]")
        result = evaluate(ctx.path(art["file"]), art)
        out["artifacts"][art["name"]] = result
        if art["precision"] == "fp32" and not result["gate"]["passed"]:
            float_failed.add(art["checkpoint"])
        if result["gate"]["passed"] or not is_repairable(art):
            continue
        if art["checkpoint"] in float_failed:
            out.setdefault("repairs", {})[art["name"]] = {"attempts": [], "repaired": None, "skipped":
                "the fp32 artifact of this model fails the gate too: the loss is not from quantization"}
            continue
        attempts = repair_int8(repair_inputs(ctx, art), art, lambda path, a=art: evaluate(path, a))
        evaluations = {}
        for attempt in attempts:
            if "path" in attempt:
                attempt["file"] = ctx.rel(Path(attempt.pop("path")))
                evaluations[attempt["file"]] = attempt.pop("evaluation")  # gate + metrics stay in the attempt
        fixed = attempts[-1] if attempts and attempts[-1]["status"] == "passed" else None
        repaired = None
        if fixed is not None:
            repaired = {**fixed["artifact"], "file": fixed["file"], "variant": art.get("variant"),
                        "checkpoint": art["checkpoint"], "macs": art.get("macs"), "params": art.get("params"),
                        "repair_of": art["name"]}
            out["artifacts"][repaired["name"]] = evaluations[fixed["file"]]
        out.setdefault("repairs", {})[art["name"]] = {"attempts": attempts, "repaired": repaired}
    return out
