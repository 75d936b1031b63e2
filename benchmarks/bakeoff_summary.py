"""Turn benchmarks/results/bakeoff/*/compare.json into the tables of benchmarks/results/bakeoff.md.

Run: .venv/bin/python benchmarks/bakeoff_summary.py   (prints the tables; the commentary in bakeoff.md is written by hand)
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent / "results" / "bakeoff"


def pct(stat: dict[str, float]) -> str:
    return f"{100 * stat['mean']:.1f} ± {100 * stat['std']:.1f}"


def main() -> None:
    for path in sorted(ROOT.glob("*/compare.json")):
        payload = json.loads(path.read_text())
        if payload.get("table"):
            from edgeprune.pipeline.compare import plot

            plot(payload, path.with_name("compare.png"))  # also for partial runs
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
        print("| budget | criterion | achieved | bal. acc | macro-F1 | accuracy | worst-class sens. | total training MACs |")
        print("|---|---|---|---|---|---|---|---|")
        for t in payload.get("table", []):
            sens = t["per_class_sensitivity"]["mean"]
            worst = min(range(len(sens)), key=lambda i: sens[i])
            print(f"| -{t['target_reduction']:.0%} | {t['criterion']} | -{100 * t['achieved_reduction']['mean']:.1f}% "
                  f"| {pct(t['balanced_accuracy'])} | {pct(t['macro_f1'])} | {pct(t['accuracy'])} "
                  f"| {names[worst]} {100 * sens[worst]:.0f} "
                  f"| {(t['training_macs']['mean'] + (0 if t['criterion'] in scratch else dense_cost)) / 1e12:.2f} T |")


if __name__ == "__main__":
    main()
