"""Issue-3 benchmark: the criteria bake-off on real medical data (RetinaMNIST, BreastMNIST).

Models: a ResNet-56-style network with 1x1 projection shortcuts (width 0.5 to fit the CPU budget) and
EfficientNet-Lite0 from its shipped ImageNet weights; budgets: -45 % and -58 % MACs; every criterion starts
from the same trained dense model and is recovered identically (PreCropping trains its cropped network from
scratch, as does the train-from-scratch baseline). Small inputs (32 px; 64 px for EfficientNet-Lite0) and few
epochs keep it near an hour on 2 CPU cores.

Run:  .venv/bin/python benchmarks/bakeoff.py [--quick]
Each combination writes benchmarks/results/bakeoff/<data>-<model>/compare.json (+ .png); rerunning resumes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
OUT = REPO / "benchmarks" / "results" / "bakeoff"

CRITERIA = "beta-rank,l1,random,precropping,masksparsity,beta-rank:beta_mode=paper"
COMBOS = [
    # (dataset, model, seeds, extra flags); EfficientNet-Lite0 costs ~4x a ResNet-56 run, so it gets one seed
    ("retinamnist", "resnet56", 2, ["--width-mult", "0.5", "--image-size", "32"]),
    ("breastmnist", "resnet56", 2, ["--width-mult", "0.5", "--image-size", "32"]),
    ("retinamnist", "efficientnet_lite0", 1, ["--pretrained", "--image-size", "64"]),
    ("breastmnist", "efficientnet_lite0", 1, ["--pretrained", "--image-size", "64"]),
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=None, help="override the per-combination seed count")
    ap.add_argument("--epochs", type=int, default=8, help="dense training (and from-scratch) epochs")
    ap.add_argument("--finetune-epochs", type=int, default=3)
    ap.add_argument("--criteria", default=CRITERIA)
    ap.add_argument("--only", default=None, help="run one combination, e.g. retinamnist-resnet56")
    ap.add_argument("--quick", action="store_true", help="1 seed, 2+1 epochs (smoke run)")
    ap.add_argument("--jobs", type=int, default=2, help="combinations run in parallel, one torch thread each")
    a = ap.parse_args()
    if a.quick:
        a.seeds, a.epochs, a.finetune_epochs = 1, 2, 1
    timings: dict[str, float] = {}

    def run(combo: tuple[str, str, int, list[str]]) -> None:
        data, model, seeds, extra = combo
        name = f"{data}-{model}"
        out = OUT / name
        cmd = [sys.executable, "-m", "edgeprune", "compare", "--criteria", a.criteria,
               "--flops-reduction", "0.45,0.58", "--seeds", str(a.seeds or seeds), "--data", str(DATA / f"{data}.npz"),
               "--model", model, "--epochs", str(a.epochs), "--finetune-epochs", str(a.finetune_epochs),
               *extra, "--out", str(out)]
        print(" ".join(cmd[1:]), flush=True)
        start = time.perf_counter()
        out.mkdir(parents=True, exist_ok=True)
        with open(out / "log.txt", "w") as log:
            subprocess.run(cmd, check=True, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                           env={**os.environ, "OMP_NUM_THREADS": "1"})
        timings[name] = round(time.perf_counter() - start, 1)
        print(f"done {name} in {timings[name]} s", flush=True)

    combos = [c for c in COMBOS if not a.only or a.only == f"{c[0]}-{c[1]}"]
    with ThreadPoolExecutor(max_workers=a.jobs) as pool:
        list(pool.map(run, combos))
    summary = {"this_invocation_wall_seconds": timings, "settings": vars(a)}  # resumed runs: only the new rows
    (OUT / "run_info.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
