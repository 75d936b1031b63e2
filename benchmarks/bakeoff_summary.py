"""Turn benchmarks/results/bakeoff/*/compare.json into the tables of benchmarks/results/bakeoff.md.

Prints one table per dataset/model and a league table across all of them (each criterion's balanced accuracy
minus L1's and minus the dense model's, per dataset/model/budget cell), redraws every compare.png and saves the
league as benchmarks/results/bakeoff/summary.json. The commentary in bakeoff.md is written by hand.

Run: .venv/bin/python benchmarks/bakeoff_summary.py
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent / "results" / "bakeoff"
REFERENCE = "l1"


def pct(stat: dict[str, float]) -> str:
    return f"{100 * stat['mean']:.1f} ± {100 * stat['std']:.1f}"


def combo_table(payload: dict[str, Any]) -> None:
    """The per dataset/model table (markdown on stdout)."""
    seeds = len(payload["spec"]["seeds"])
    dense = payload["dense"]["test"]
    state = "complete" if payload.get("complete") else f"PARTIAL ({len(payload['rows'])} runs)"
    print(f"\n### {payload['data']} / {payload['model']} ({seeds} seed(s), {state})\n")
    print(f"Dense: balanced accuracy {100 * dense['balanced_accuracy']:.1f}, macro-F1 {100 * dense['macro_f1']:.1f}, "
          f"accuracy {100 * dense['accuracy']:.1f}, {payload['dense']['macs'] / 1e6:.1f} M MACs.\n")
    names = payload["class_names"]
    d = payload["dense"]
    dense_cost = d.get("samples_seen", 0) * d["macs"] * 3  # forward + backward of the dense training run
    scratch = {r["criterion"] for r in payload["rows"] if r["recovery"] == "train-from-scratch"}
    seconds = {}
    for r in payload["rows"]:
        seconds.setdefault((r["criterion"], r["target_reduction"]), []).append(r["seconds"])
    print("| budget | criterion | achieved | bal. acc | macro-F1 | accuracy | worst-class sens. "
          "| total training MACs | wall s / run |")
    print("|---|---|---|---|---|---|---|---|---|")
    for t in payload.get("table", []):
        sens = t["per_class_sensitivity"]["mean"]
        worst = min(range(len(sens)), key=lambda i: sens[i])
        wall = statistics.mean(seconds[(t["criterion"], t["target_reduction"])])
        print(f"| -{t['target_reduction']:.0%} | {t['criterion']} | -{100 * t['achieved_reduction']['mean']:.1f}% "
              f"| {pct(t['balanced_accuracy'])} | {pct(t['macro_f1'])} | {pct(t['accuracy'])} "
              f"| {names[worst]} {100 * sens[worst]:.0f} "
              f"| {(t['training_macs']['mean'] + (0 if t['criterion'] in scratch else dense_cost)) / 1e12:.2f} T "
              f"| {wall:.0f} |")


def by_model(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Mean Δ vs L1 per model (pretrained and from-scratch models behave differently)."""
    groups: dict[str, list[float]] = {}
    for r in rows:
        if r["vs_l1_pp"] is not None:
            groups.setdefault(r["cell"].split("/")[1], []).append(r["vs_l1_pp"])
    return {model: round(statistics.mean(v), 2) for model, v in sorted(groups.items())}


def league(payloads: list[dict[str, Any]]) -> dict[str, Any]:
    """Per criterion: balanced accuracy minus L1's and minus dense, in pp, over every dataset/model/budget cell."""
    cells: dict[str, list[dict[str, Any]]] = {}
    for p in payloads:
        dense = p["dense"]["test"]["balanced_accuracy"]
        by_budget: dict[float, dict[str, float]] = {}
        for t in p.get("table", []):
            by_budget.setdefault(t["target_reduction"], {})[t["criterion"]] = t["balanced_accuracy"]["mean"]
        for budget, scores in sorted(by_budget.items()):
            for crit, score in scores.items():
                cells.setdefault(crit, []).append({
                    "cell": f"{p['data']}/{p['model']}/-{budget:.0%}",
                    "vs_dense_pp": round(100 * (score - dense), 2),
                    "vs_l1_pp": round(100 * (score - scores[REFERENCE]), 2) if REFERENCE in scores else None,
                })
    out = {}
    for crit, rows in cells.items():
        vs_l1 = [r["vs_l1_pp"] for r in rows if r["vs_l1_pp"] is not None]
        out[crit] = {
            "cells": rows,
            "mean_vs_l1_pp": round(statistics.mean(vs_l1), 2) if vs_l1 else None,
            "mean_vs_l1_pp_by_model": by_model(rows),
            "cells_above_l1": sum(v > 0 for v in vs_l1),
            "mean_vs_dense_pp": round(statistics.mean(r["vs_dense_pp"] for r in rows), 2),
            "cells_at_or_above_dense": sum(r["vs_dense_pp"] >= 0 for r in rows),
            "n_cells": len(rows),
        }
    return out


def main() -> None:
    from edgeprune.pipeline.compare import plot

    payloads = []
    for path in sorted(ROOT.glob("*/compare.json")):
        payload = json.loads(path.read_text())
        if payload.get("table"):
            plot(payload, path.with_name("compare.png"))  # also for partial runs
        combo_table(payload)
        payloads.append(payload)
    table = league(payloads)
    print("\n### League across all datasets, models and budgets (balanced accuracy, pp)\n")
    models = sorted({m for s in table.values() for m in s["mean_vs_l1_pp_by_model"]})
    print("| criterion | cells | mean Δ vs L1 | " + " | ".join(f"Δ vs L1, {m}" for m in models)
          + " | cells above L1 | mean Δ vs dense | cells ≥ dense |")
    print("|---|---|---|" + "---|" * len(models) + "---|---|---|")
    for crit, s in sorted(table.items(), key=lambda kv: -(kv[1]["mean_vs_l1_pp"] or 0)):
        vs_l1 = "ref." if crit == REFERENCE else f"{s['mean_vs_l1_pp']:+.1f}"
        above = "ref." if crit == REFERENCE else f"{s['cells_above_l1']}/{s['n_cells']}"
        per_model = " | ".join("ref." if crit == REFERENCE else f"{s['mean_vs_l1_pp_by_model'].get(m, 0):+.1f}"
                               for m in models)
        print(f"| {crit} | {s['n_cells']} | {vs_l1} | {per_model} | {above} | {s['mean_vs_dense_pp']:+.1f} "
              f"| {s['cells_at_or_above_dense']}/{s['n_cells']} |")
    compute = {f"{p['data']}-{p['model']}": round(sum(r["seconds"] for r in p["rows"]), 1) for p in payloads}
    print(f"\nOne-thread wall time of all prune+recover runs: {sum(compute.values()) / 60:.0f} min "
          f"({len([r for p in payloads for r in p['rows']])} runs; dense training not included)")
    summary = {"reference": REFERENCE, "complete": all(p.get("complete") for p in payloads),
               "run_seconds_by_combination": compute, "league": table}
    (ROOT / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
