"""Issue-13 item 3: what each recovery change buys for the minority class, on real RetinaMNIST and BreastMNIST.

Per dataset: a ResNet-20 trained briefly, pruned by 50 % MACs with L1 (one shot), then recovered from the same
pruned weights with each variant, every change added to the previous one:

  baseline        6 epochs, weighted CE + plain KD, keep the best validation balanced accuracy (the old recipe)
  +class-KD       the KD term of each image weighted by its class's inverse frequency
  +worst-stop     keep the best balanced accuracy among epochs within 5 pp of the dense worst-class sensitivity
  +scaled-length  length from images seen (ceil(8000 / n_train), bounded to [3, 30]) instead of 6 epochs
  gradual-3       +scaled-length's recipe, pruning in 3 cubic steps with recovery between them (optional)

Prints and writes benchmarks/results/recovery_ablation.json: balanced accuracy and worst-class sensitivity on
validation and test for the dense model and every variant. Selection reads validation only; test is reported.

Run:  OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python benchmarks/recovery_ablation.py [--seeds 1] [--no-gradual]
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console

from edgeprune.config import BuildConfig
from edgeprune.metrics import classification_metrics
from edgeprune.pipeline.context import BuildContext
from edgeprune.pipeline.pruning import run_pruning
from edgeprune.pipeline.recovery import recover, train_settings
from edgeprune.train import predict_logits, train_model

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
OUT = REPO / "benchmarks" / "results" / "recovery_ablation.json"

VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("baseline", {"epochs": 6, "kd_weighting": "none", "select": "balanced-accuracy"}),
    ("+class-KD", {"epochs": 6, "kd_weighting": "class", "select": "balanced-accuracy"}),
    ("+worst-stop", {"epochs": 6, "kd_weighting": "class", "select": "worst-class"}),
    ("+scaled-length", {"epochs": None, "kd_weighting": "class", "select": "worst-class"}),
]


def scores(model: torch.nn.Module, split: Any, num_classes: int) -> dict[str, Any]:
    logits, labels = predict_logits(model, split.x), split.y.numpy()
    pred = logits.argmax(1)
    recalls = [float((pred[labels == c] == c).mean()) for c in range(num_classes) if (labels == c).any()]
    return {"balanced_accuracy": round(float(np.mean(recalls)), 4), "worst_class_sensitivity": round(min(recalls), 4),
            "per_class_sensitivity": [round(r, 4) for r in recalls]}


def evaluate(ctx: BuildContext, model: torch.nn.Module) -> dict[str, Any]:
    d = ctx.data
    out = {"val": scores(model, d.val, d.num_classes), "test": scores(model, d.test, d.num_classes)}
    # the same check as the gate's metrics module, as a cross-check of the test numbers
    m = classification_metrics(predict_logits(model, d.test.x), d.test.y.numpy(), d.num_classes).to_dict()
    assert abs(m["balanced_accuracy"] - out["test"]["balanced_accuracy"]) < 1e-3
    return out


def variant_ctx(ctx: BuildContext, finetune: dict[str, Any], prune: dict[str, Any] | None = None) -> BuildContext:
    data = ctx.cfg.model_dump()
    data["finetune"].update(finetune)
    data["prune"].update(prune or {})
    child = BuildContext(BuildConfig.model_validate(data), ctx.run_dir, console=ctx.console)
    child.__dict__["data"] = ctx.data  # share the prepared tensors (cached_property)
    return child


def run_dataset(name: str, seed: int, dense_epochs: int, gradual: bool, work: Path) -> dict[str, Any]:
    cfg = BuildConfig.model_validate({
        "seed": seed, "model": {"name": "resnet20"}, "data": {"source": str(DATA / f"{name}.npz")},
        "train": {"epochs": dense_epochs, "patience": dense_epochs},
        "prune": {"criterion": "l1", "flops_reduction": 0.5},
    })
    ctx = BuildContext(cfg, work / f"{name}-{seed}", console=Console(quiet=True))
    d = ctx.data
    row: dict[str, Any] = {"dataset": name, "seed": seed, "sizes": {"train": len(d.train), "val": len(d.val),
                                                                     "test": len(d.test)},
                           "val_class_counts": np.bincount(d.val.y.numpy(), minlength=d.num_classes).tolist(),
                           "test_class_counts": np.bincount(d.test.y.numpy(), minlength=d.num_classes).tolist()}
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    dense = train_model(ctx.fresh_model(), d.train, d.val, d.num_classes, train_settings(ctx, cfg.train)).model
    row["dense"] = {**evaluate(ctx, dense), "seconds": round(time.perf_counter() - t0, 1)}
    pruned = run_pruning(ctx, copy.deepcopy(dense))
    row["pruned_no_recovery"] = {**evaluate(ctx, pruned.model), "macs_reduction": round(pruned.achieved_reduction, 4)}
    print(f"{name} seed {seed}: dense {row['dense']}", flush=True)
    row["variants"] = {}
    plan: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = [(n, ft, None) for n, ft in VARIANTS]
    if gradual:
        plan.append(("gradual-3", VARIANTS[-1][1], {"iterative_steps": 3}))
    for label, finetune, prune in plan:
        t0 = time.perf_counter()
        vctx = variant_ctx(ctx, finetune, prune)
        model = run_pruning(vctx, copy.deepcopy(dense)).model if prune else copy.deepcopy(pruned.model)
        result = recover(vctx, model, "finetune", dense)
        assert result is not None
        row["variants"][label] = {
            **evaluate(ctx, result.model), "epochs_planned": result.epochs_planned, "epochs_run": len(result.history),
            "best_epoch": result.best_epoch, "selection_reason": result.selection.get("reason"),
            "seconds": round(time.perf_counter() - t0, 1),
        }
        v = row["variants"][label]
        val = v["val"]
        print(f"  {label:15s} val bal {val['balanced_accuracy']:.3f} worst {val['worst_class_sensitivity']:.3f}"
              f" | test bal {v['test']['balanced_accuracy']:.3f} worst {v['test']['worst_class_sensitivity']:.3f}"
              f" | epoch {v['best_epoch']}/{v['epochs_run']} ({v['seconds']} s)", flush=True)
    return row


def markdown_table(payload: dict[str, Any]) -> str:
    """One line per dataset, seed and variant (percent), for benchmarks/results/recovery_ablation.md."""
    lines = ["| data | seed | variant | val bal. acc | val worst class | test bal. acc | test worst class | epochs |",
             "|---|---|---|---|---|---|---|---|"]
    for row in payload["rows"]:
        entries = [("dense", row["dense"], ""), ("pruned, no recovery", row["pruned_no_recovery"], "")]
        entries += [(k, v, f"{v['best_epoch']}/{v['epochs_run']} of {v['epochs_planned']}")
                    for k, v in row["variants"].items()]
        for label, m, epochs in entries:
            cells = [f"{100 * m[split][metric]:.1f}" for split in ("val", "test")
                     for metric in ("balanced_accuracy", "worst_class_sensitivity")]
            lines.append(f"| {row['dataset']} | {row['seed']} | {label} | {' | '.join(cells)} | {epochs} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--dense-epochs", type=int, default=8)
    ap.add_argument("--datasets", default="retinamnist,breastmnist")
    ap.add_argument("--no-gradual", action="store_true")
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--table", action="store_true", help="print the markdown table of an existing --out and exit")
    a = ap.parse_args()
    if a.table:
        print(markdown_table(json.loads(Path(a.out).read_text())))
        return
    torch.set_num_threads(1)
    start = time.perf_counter()
    rows = []
    settings = {**vars(a), "model": "resnet20", "criterion": "l1", "flops_reduction": 0.5,
                "variants": {n: ft for n, ft in VARIANTS}, "threads": 1}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(a.seeds):
            for name in a.datasets.split(","):
                rows.append(run_dataset(name, seed, a.dense_epochs, not a.no_gradual, Path(tmp)))
                payload = {"settings": settings, "wall_seconds": round(time.perf_counter() - start, 1),
                           "summary": summarize(rows), "rows": rows}
                Path(a.out).write_text(json.dumps(payload, indent=2) + "\n")  # after every row: partial runs count
    print(json.dumps(payload["summary"], indent=2))
    print(f"wrote {a.out} in {payload['wall_seconds']} s")


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per variant, the mean over rows of each metric minus the baseline's (percentage points)."""
    out: dict[str, Any] = {}
    for label in rows[0]["variants"]:
        deltas: dict[str, list[float]] = {}
        for row in rows:
            base, v = row["variants"]["baseline"], row["variants"][label]
            for split in ("val", "test"):
                for metric in ("balanced_accuracy", "worst_class_sensitivity"):
                    deltas.setdefault(f"{split}_{metric}_pp_vs_baseline", []).append(
                        100 * (v[split][metric] - base[split][metric]))
        out[label] = {k: round(float(np.mean(x)), 2) for k, x in deltas.items()}
    return out


if __name__ == "__main__":
    main()
