"""Run every artifact in its own runtime; compare with PyTorch and with the dense model; apply the gate.

Two phases, so the verdict is not biased by the choices made on the way:

1. **choices, on the validation split**: whether a full-int8 file needs the repair ladder, and which variant
   of the ladder wins, are decided by the gate on the run's validation split. The test split is sealed
   meanwhile (any read raises, see :class:`edgeprune.pipeline.context.TestSplit`).
2. **final verdict, on the test split**: the exported artifacts and the chosen repaired ones are evaluated on
   the test split, read once, and that read is recorded (``test_reads`` in the outcome and report.json).
"""

from __future__ import annotations

import copy
import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeprune.export.repair import RepairInputs
from edgeprune.gate import evaluate_gate, gate_power, power_warnings
from edgeprune.pipeline.checkpoints import load_checkpoint
from edgeprune.pipeline.context import BuildContext
from edgeprune.rundir.paths import DENSE
from edgeprune.train import TensorData, predict_logits


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


def run_gate_power(ctx: BuildContext) -> dict[str, Any]:
    """The gate's power on this run's validation and test sizes (:func:`edgeprune.gate.gate_power`)."""
    data, vcfg = ctx.data, ctx.cfg.verify
    k = data.num_classes
    counts = (tuple(np.bincount(data.val.y.numpy(), minlength=k).tolist()), tuple(data.test.class_counts(k)))
    power = _cached_power(counts, tuple(data.contract.class_names), vcfg.max_class_sensitivity_drop,
                          vcfg.max_bal_acc_drop, vcfg.bootstrap, ctx.cfg.seed)
    return copy.deepcopy(power)


@functools.lru_cache(maxsize=4)
def _cached_power(counts: tuple[tuple[int, ...], tuple[int, ...]], names: tuple[str, ...], max_class_drop: float,
                  max_bal_drop: float, n_boot: int, seed: int) -> dict[str, Any]:
    """Computed once per build: the start-up warning and the verify stage ask for the same numbers."""
    return gate_power({"val": list(counts[0]), "test": list(counts[1])}, list(names), max_class_drop, max_bal_drop,
                      n_boot=n_boot, seed=seed)


def warn_gate_power(ctx: BuildContext) -> None:
    """Before any work: one line per class whose gate limit the validation or test size cannot certify."""
    if not ctx.cfg.verify.gate:
        return
    for line in power_warnings(run_gate_power(ctx)):
        ctx.console.print(f"[yellow]warning: {line}[/yellow]", soft_wrap=True)


@dataclass
class _Split:
    """One labelled split with the PyTorch reference logits of every checkpoint on it."""

    name: str
    data: TensorData
    ref_logits: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def y(self) -> np.ndarray:
        return self.data.y.numpy()


class _Verifier:
    """Evaluates artifact files on a split: runtime metrics, agreement with PyTorch, bootstrap and gate."""

    def __init__(self, ctx: BuildContext, artifacts: list[dict[str, Any]]) -> None:
        from edgeprune.runtimes.coreml import reference_models

        self.ctx = ctx
        self.models: dict[str, Any] = {}
        for ckpt in sorted({a["checkpoint"] for a in artifacts} | {DENSE}):
            self.models[ckpt], _ = load_checkpoint(ctx.path(ckpt), ctx.fresh_model(), ctx.example_input)
        # Core ML off macOS runs the package's weights in the PyTorch model it came from
        self.references: dict[str | Path, Any] = {ctx.path(a["file"]): self.models[a["checkpoint"]]
                                                   for a in artifacts}
        self.reference_models = reference_models
        self.threads = os.cpu_count() or 1

    def split(self, name: str, data: TensorData) -> _Split:
        return _Split(name, data, {ckpt: predict_logits(m, data.x) for ckpt, m in self.models.items()})

    def evaluate(self, path: Path, art: dict[str, Any], split: _Split) -> dict[str, Any]:
        from edgeprune.metrics import agreement, classification_metrics, paired_bootstrap_delta
        from edgeprune.runtimes import open_session
        from edgeprune.runtimes.coreml import SIMULATED

        ctx, vcfg, k = self.ctx, self.ctx.cfg.verify, self.ctx.data.num_classes
        with self.reference_models(self.references):
            session = open_session(path, fmt=art["format"], threads=self.threads)
        kind = getattr(session, "verification_kind", "runtime")
        logits = np.asarray(session.run(split.data.x.numpy()), dtype=np.float32)
        y = split.y
        metrics = classification_metrics(logits, y, k)
        delta = paired_bootstrap_delta(y, split.ref_logits[DENSE].argmax(1), logits.argmax(1), k,
                                       n_boot=vcfg.bootstrap, seed=ctx.cfg.seed)
        verdict = evaluate_gate(delta, ctx.data.contract.class_names, vcfg.max_bal_acc_drop,
                                vcfg.max_class_sensitivity_drop, enabled=vcfg.gate)
        agree = agreement(logits, split.ref_logits[art["checkpoint"]])
        notes = []
        if kind == SIMULATED:
            notes.append("Core ML prediction needs macOS: checked structurally and with the package's decompressed "
                         "weights in a BN-folded PyTorch copy (fp16 activations not simulated)")
        if art["precision"] == "fp32" and agree["max_abs"] > vcfg.fp32_tolerance:
            notes.append(f"fp32 logits differ from PyTorch by {agree['max_abs']:.2e} (> {vcfg.fp32_tolerance:g})")
        return {"metrics": metrics.to_dict(), "vs_torch": agree, "vs_dense_float": delta, "verification_kind": kind,
                "gate": verdict.model_dump(), "split": split.name, "notes": notes}


def _comparison_only(art: dict[str, Any], artifacts: list[dict[str, Any]]) -> bool:
    """A dense file in a build that also has pruned files (the dense ones are there to compare against)."""
    return art.get("variant") == "dense" and any(a.get("variant") == "pruned" for a in artifacts)


def _fp32_sibling(art: dict[str, Any], artifacts: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((a for a in artifacts if a["checkpoint"] == art["checkpoint"] and a["precision"] == "fp32"
                 and a["name"] != art["name"]), None)


def _repairs_on_validation(ctx: BuildContext, verifier: _Verifier, artifacts: list[dict[str, Any]],
                           ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The int8 repair ladder, every choice made by the gate on the validation split.

    Returns ``(repairs, repaired)``: the ladder record per rejected full-int8 artifact, and the artifact
    records of the variants the ladder chose (to be judged on the test split like every other artifact).
    """
    from edgeprune.export.repair import is_repairable, repair_int8

    repairable = [a for a in artifacts if is_repairable(a)]
    if not repairable or not ctx.cfg.verify.gate:
        return {}, []
    if len(ctx.data.val) == 0:
        return {a["name"]: {"attempts": [], "repaired": None, "selection_split": "val",
                            "skipped": "no validation split to choose a repair on"} for a in repairable}, []
    val = verifier.split("val", ctx.data.val)
    on_val: dict[str, dict[str, Any]] = {}

    def judged(art: dict[str, Any]) -> dict[str, Any]:
        if art["name"] not in on_val:
            ctx.console.print(f"  [dim]check {art['name']} on the validation split[/dim]")
            on_val[art["name"]] = verifier.evaluate(ctx.path(art["file"]), art, val)
        return on_val[art["name"]]

    repairs: dict[str, Any] = {}
    repaired: list[dict[str, Any]] = []
    for art in repairable:
        gate = judged(art)["gate"]
        if gate["passed"]:
            continue
        record: dict[str, Any] = {"selection_split": "val", "validation_gate": gate, "attempts": [], "repaired": None}
        repairs[art["name"]] = record
        if _comparison_only(art, artifacts) and not ctx.cfg.verify.repair_comparisons:
            record["skipped"] = ("a dense comparison file of a pruned build: the ladder repairs the files the build "
                                 "ships (set verify.repair_comparisons = true to repair it too)")
            continue
        sibling = _fp32_sibling(art, artifacts)
        if sibling is not None and not judged(sibling)["gate"]["passed"]:
            record["skipped"] = ("the fp32 artifact of this model fails the gate on the validation split too: "
                                 "the loss is not from quantization")
            continue

        def evaluate_on_val(path: Path, a: dict[str, Any] = art) -> dict[str, Any]:
            return verifier.evaluate(path, a, val)

        attempts = repair_int8(repair_inputs(ctx, art), art, evaluate_on_val)
        for attempt in attempts:
            attempt["split"] = "val"
            attempt.pop("evaluation", None)  # gate + metrics (on validation) stay in the attempt
            if "path" in attempt:
                attempt["file"] = ctx.rel(Path(attempt.pop("path")))
        fixed = attempts[-1] if attempts and attempts[-1]["status"] == "passed" else None
        if fixed is not None:
            record["repaired"] = {**fixed["artifact"], "file": fixed["file"], "variant": art.get("variant"),
                                  "checkpoint": art["checkpoint"], "macs": art.get("macs"),
                                  "params": art.get("params"), "repair_of": art["name"]}
            repaired.append(record["repaired"])
        record["attempts"] = attempts
    return repairs, repaired


def verify_artifacts(ctx: BuildContext, artifacts: list[dict[str, Any]]) -> dict[str, Any]:
    """Choices on the validation split, then one read of the test split for the final verdict."""
    from edgeprune.metrics import classification_metrics

    data = ctx.data
    first_read = len(data.test.reads)
    verifier = _Verifier(ctx, artifacts)
    with data.test.sealed("the int8 repair ladder (its choices read the validation split)"):
        repairs, repaired = _repairs_on_validation(ctx, verifier, artifacts)
    final = list(artifacts) + repaired
    test = verifier.split("test", data.test.read(f"final verdict of {len(final)} artifact(s) and their references"))
    out: dict[str, Any] = {
        "test_size": len(test.data),
        "selection_split": "val",
        "reference": {name: classification_metrics(v, test.y, data.num_classes).to_dict()
                      for name, v in test.ref_logits.items()},
        "artifacts": {},
    }
    for art in final:
        ctx.console.print(f"  [dim]verify {art['name']}[/dim]")
        result = verifier.evaluate(ctx.path(art["file"]), art, test)
        if art.get("repair_of"):
            result["notes"].append(f"repaired variant of {art['repair_of']}, chosen on the validation split")
        out["artifacts"][art["name"]] = result
    if repairs:
        out["repairs"] = repairs
    out["test_reads"] = data.test.reads[first_read:]
    out["gate_power"] = run_gate_power(ctx)
    return out
