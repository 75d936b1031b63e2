"""The bake-off: every criterion at the same budgets from the same trained model, recovered identically.

Rows are appended to ``compare.json`` as they finish, so an interrupted bake-off resumes where it stopped.
A criterion may carry options, ``beta-rank:beta_mode=paper`` or ``masksparsity:lam=0.05:sparse_epochs=10``, so
variants of one method are compared side by side; the whole label names the row.
A "train the pruned architecture from scratch" baseline (Liu et al. 2019, "Rethinking the value of network
pruning") uses the L1 architecture at each budget with fresh weights and the dense training schedule.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from edgeprune.budget import Budget, count
from edgeprune.config import BuildConfig
from edgeprune.config import split_criterion as split_variant
from edgeprune.fsutil import read_json, write_json_atomic
from edgeprune.pipeline.checkpoints import load_checkpoint, save_checkpoint
from edgeprune.pipeline.context import BuildContext
from edgeprune.pipeline.recovery import recover, train_settings
from edgeprune.train import predict_logits, train_model

COMPARE_JSON = "compare.json"
COMPARE_PNG = "compare.png"
SCRATCH = "scratch-l1-arch"


@dataclass(frozen=True)
class CompareSpec:
    criteria: list[str]
    reductions: list[float]
    seeds: list[int]
    kind: str = "flops"
    scratch_baseline: bool = True

    def jobs(self) -> list[tuple[str, float, int]]:
        names = self.criteria + ([SCRATCH] if self.scratch_baseline else [])
        return [(c, r, s) for r in self.reductions for c in names for s in self.seeds]


def _metrics(ctx: BuildContext, model: torch.nn.Module) -> dict[str, Any]:
    from edgeprune.metrics import classification_metrics

    test = ctx.data.test.read("bake-off: test metrics of each criterion's model")
    logits = predict_logits(model, test.x)
    return classification_metrics(logits, test.y.numpy(), ctx.data.num_classes).to_dict()


def _variant(ctx: BuildContext, label: str, reduction: float, seed: int, kind: str) -> BuildContext:
    criterion, options = split_variant(label)
    if not options and criterion == ctx.cfg.prune.criterion:
        options = ctx.cfg.prune.options  # the config's options belong to the config's criterion only
    prune = ctx.cfg.prune.model_copy(update={
        "criterion": criterion, "options": options, **Budget(kind, reduction).options()})
    cfg = ctx.cfg.model_copy(update={"prune": prune, "seed": seed})
    child = BuildContext(cfg=cfg, run_dir=ctx.run_dir, console=ctx.console)
    child.__dict__["data"] = ctx.data  # share the prepared tensors (cached_property slot)
    return child


def _dense(ctx: BuildContext) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The shared dense model: loaded from --weights, reused from an earlier run with the same settings, or trained."""
    from edgeprune.rundir.manifest import cache_key

    if ctx.cfg.model.weights:
        from edgeprune.models import resolve_model

        model = resolve_model(ctx.cfg.model.name, ctx.data.num_classes, ctx.data.contract.in_channels,
                              weights=ctx.cfg.model.weights, **ctx.model_kwargs())
        return model.eval(), {"trained": False}
    key = cache_key(ctx.cfg.model.model_dump(), ctx.cfg.train.model_dump(), ctx.cfg.data.model_dump(), ctx.cfg.seed)
    path, info_path = ctx.path("models", "dense.pt"), ctx.path("models", "dense.json")
    if path.is_file() and info_path.is_file() and read_json(info_path).get("key") == key:
        model, _ = load_checkpoint(path, ctx.fresh_model(), ctx.example_input)
        return model, read_json(info_path)
    torch.manual_seed(ctx.cfg.seed)
    result = train_model(ctx.fresh_model(pretrained=ctx.cfg.model.pretrained), ctx.data.train, ctx.data.val,
                         ctx.data.num_classes, train_settings(ctx, ctx.cfg.train))
    save_checkpoint(path, result.model, meta={"stage": "compare-dense"})
    info = {"key": key, "trained": True, "samples_seen": result.samples_seen, "epochs_run": len(result.history),
            "best_val_balanced_accuracy": result.best_val_balanced_accuracy}
    write_json_atomic(info_path, info)
    return result.model.eval(), info


def _one(ctx: BuildContext, dense: torch.nn.Module, criterion: str, reduction: float, seed: int,
         kind: str) -> dict[str, Any]:
    from edgeprune.pipeline.pruning import run_pruning
    from edgeprune.prune.plan import apply_plan

    start = time.perf_counter()
    torch.manual_seed(seed)
    if criterion == SCRATCH:
        arch = run_pruning(_variant(ctx, "l1", reduction, seed, kind), dense)
        child = _variant(ctx, "l1", reduction, seed, kind)
        model = apply_plan(child.fresh_model(), arch.plan, ctx.example_input)
        trained = recover(child, model, "train-from-scratch", None, seed=seed)
        result, recovery = arch, "train-from-scratch"
    else:
        child = _variant(ctx, criterion, reduction, seed, kind)
        result = run_pruning(child, dense)
        trained = recover(child, result.model, result.recovery, dense, seed=seed)
        recovery = result.recovery
    model = trained.model if trained is not None else result.model
    macs, params = count(model, ctx.example_input)
    return {
        "criterion": criterion, "target_reduction": reduction, "budget": kind, "seed": seed,
        "achieved_reduction": round(
            1 - (macs / result.dense_macs if kind == "flops" else params / result.dense_params), 4),
        "macs": macs, "params": params, "recovery": recovery,
        "train_samples": trained.samples_seen if trained else 0,
        "training_macs": (trained.samples_seen if trained else 0) * macs * 3,
        "seconds": round(time.perf_counter() - start, 1),
        "warnings": [n for n in result.notes if n.startswith("WARNING")],  # e.g. MaskSparsity did not converge
        "test": _metrics(ctx, model),
    }


def aggregate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean ± std per (criterion, target reduction) over seeds."""
    table = []
    keys = sorted({(r["criterion"], r["target_reduction"]) for r in rows}, key=lambda k: (k[1], k[0]))
    for crit, red in keys:
        group = [r for r in rows if r["criterion"] == crit and r["target_reduction"] == red]

        def stat(values: list[float]) -> dict[str, float]:
            arr = np.asarray(values, dtype=float)
            std = float(arr.std(ddof=1)) if len(arr) > 1 else 0.0
            return {"mean": round(float(arr.mean()), 4), "std": round(std, 4)}

        sens = np.asarray([g["test"]["per_class_sensitivity"] for g in group], dtype=float)
        table.append({
            "criterion": crit, "target_reduction": red, "n_seeds": len(group),
            "achieved_reduction": stat([g["achieved_reduction"] for g in group]),
            "balanced_accuracy": stat([g["test"]["balanced_accuracy"] for g in group]),
            "macro_f1": stat([g["test"]["macro_f1"] for g in group]),
            "accuracy": stat([g["test"]["accuracy"] for g in group]),
            "per_class_sensitivity": {
                "mean": sens.mean(0).round(4).tolist(),
                "std": (sens.std(0, ddof=1) if len(group) > 1 else sens.std(0)).round(4).tolist()},
            "training_macs": stat([g["training_macs"] for g in group]),
        })
    return table


def plot(payload: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from edgeprune.fsutil import atomic_path

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for crit in sorted({t["criterion"] for t in payload["table"]}):
        pts = [t for t in payload["table"] if t["criterion"] == crit]
        ax.errorbar([100 * p["achieved_reduction"]["mean"] for p in pts],
                    [100 * p["balanced_accuracy"]["mean"] for p in pts],
                    yerr=[100 * p["balanced_accuracy"]["std"] for p in pts], marker="o", capsize=3, label=crit)
    dense = payload.get("dense", {}).get("test", {}).get("balanced_accuracy")
    if dense is not None:
        ax.axhline(100 * dense, color="grey", linestyle="--", label="dense")
    ax.set_xlabel(f"{payload['spec']['kind'].upper()} reduction (%)")
    ax.set_ylabel("test balanced accuracy (%)")
    ax.set_title(f"{payload['model']} on {payload['data']}: mean ± std over {len(payload['spec']['seeds'])} seeds")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


RESULT_SECTIONS = ("seed", "model", "data", "train", "prune", "finetune")


def _result_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The config sections a bake-off row depends on; export/verify/profile settings never change a row."""
    return {key: config.get(key) for key in RESULT_SECTIONS}


def run_compare(cfg: BuildConfig, spec: CompareSpec, out_dir: Path, console: Console | None = None) -> dict[str, Any]:
    """Run (or resume) the bake-off into ``out_dir``; returns the compare.json payload."""
    from edgeprune.preflight import check_compare

    check_compare(cfg, spec.criteria)  # unknown names, bad options, missing files fail before any training
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx = BuildContext(cfg=cfg, run_dir=out_dir, console=console or Console())
    path = out_dir / COMPARE_JSON
    previous = read_json(path) if path.is_file() else {}
    same = _result_settings(previous.get("config") or {}) == _result_settings(cfg.model_dump(mode="json"))
    done = {(r["criterion"], r["target_reduction"], r["seed"]): r for r in previous.get("rows", []) if same}
    dense, dense_info = _dense(ctx)
    payload: dict[str, Any] = {
        "schema_version": 1, "model": cfg.model.name, "data": ctx.data.info["name"],
        "spec": {"criteria": spec.criteria, "reductions": spec.reductions, "seeds": spec.seeds, "kind": spec.kind,
                 "scratch_baseline": spec.scratch_baseline},
        "config": cfg.model_dump(mode="json"), "class_names": ctx.data.contract.class_names,
        "dense": {**dense_info, "test": _metrics(ctx, dense), "macs": count(dense, ctx.example_input)[0]},
        "rows": list(done.values()), "complete": False,
    }
    jobs = [j for j in spec.jobs() if j not in done]
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=ctx.console) as progress:
        task = progress.add_task("bake-off", total=len(spec.jobs()), completed=len(done))
        for crit, red, seed in jobs:
            progress.update(task, description=f"{crit} -{red:.0%} seed {seed}")
            payload["rows"].append(_one(ctx, dense, crit, red, seed, spec.kind))
            payload["table"] = aggregate(payload["rows"])
            write_json_atomic(path, payload)
            progress.advance(task)
    payload["table"] = aggregate(payload["rows"])
    payload["complete"] = True
    write_json_atomic(path, payload)
    plot(payload, out_dir / COMPARE_PNG)
    return payload
