"""Issue-2 benchmark: one RetinaMNIST build, dense vs pruned (-50 % MACs), fp32 vs int8.

Run:  .venv/bin/python benchmarks/retinamnist_build.py [--data ../shared/data/retinamnist.npz] [--epochs 30]
Prints a table and saves benchmarks/results/retinamnist_build.json. Also reports the demo's wall time when
--demo is given (it runs `edgeprune build` on the embedded default exactly as `make demo` does).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def build(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "edgeprune", "build", *args], check=False, cwd=REPO)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(REPO.parent / "shared/data/retinamnist.npz"))
    ap.add_argument("--model", default="resnet20")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--finetune-epochs", type=int, default=10)
    ap.add_argument("--out", default=str(REPO / "benchmarks/runs/retinamnist"))
    ap.add_argument("--demo", action="store_true", help="also time `edgeprune build` on the embedded default")
    ap.add_argument("--existing", default=None, help="summarise this finished run directory instead of building")
    a = ap.parse_args()
    if a.existing:
        a.out = a.existing
    result: dict = {"command": ["edgeprune", "build", "--data", a.data, "--model", a.model, "--epochs", str(a.epochs),
                                "--finetune-epochs", str(a.finetune_epochs), "--flops-reduction", "0.5",
                                "--out", a.out, "--no-gate"]}
    if a.demo:
        result["demo_wall_seconds"] = round(build(["--out", str(REPO / "benchmarks/runs/demo"), "--force", "--no-gate"]), 1)
    if a.existing:
        manifest = json.loads((Path(a.out) / "manifest.json").read_text())
        result["command"] = manifest["command"]
        result["stage_seconds"] = {s["name"]: s["seconds"] for s in manifest["stages"]}
    else:
        result["wall_seconds"] = round(build(result["command"][2:] + ["--force"]), 1)
    report = json.loads((Path(a.out) / "report.json").read_text())
    rows = []
    for r in report["artifacts"]:
        if r["precision"] not in ("fp32", "int8") or r["format"] != "tflite":
            continue
        rows.append({"artifact": r["name"], "quantization": r["quantization"], "size_kb": round(r["size_bytes"] / 1024, 1),
                     "macs_m": round(r["macs"] / 1e6, 2), "p50_ms": r["latency_p50_ms"], "peak_rss_mb": r["peak_rss_mb"],
                     "balanced_accuracy": round(r["balanced_accuracy"], 4), "accuracy": round(r["accuracy"], 4),
                     "gate_passed": r["gate_passed"]})
    result.update(rows=rows, prune=report["prune"], dense_test=report["dense_test"]["balanced_accuracy"],
                  versions=report["versions"])
    print(f"{'artifact':28} {'quant':12} {'size KB':>8} {'MACs M':>8} {'p50 ms (threads)':>26} {'bal.acc':>8}")
    for r in rows:
        lat = ", ".join(f"{v:.3f}@{k.split(':')[-1]}" for k, v in sorted(r["p50_ms"].items()))
        print(f"{r['artifact']:28} {r['quantization']:12} {r['size_kb']:8.1f} {r['macs_m']:8.2f} {lat:>26} "
              f"{r['balanced_accuracy']:8.3f}")
    for key in ("demo_wall_seconds", "wall_seconds"):
        if key in result:
            print(f"{key}: {result[key]}")
    out = REPO / "benchmarks/results/retinamnist_build.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"saved {out}")


if __name__ == "__main__":
    main()
