"""Issue-13 benchmark: the accuracy-constrained search against fixed-budget single shots, on real MedMNIST data.

A cell is (dataset, model, contract, seed). Per cell, through the library API (``edgeprune.api.run``):

  search     a build with no fixed budget: the Optuna search picks criterion, MAC reduction and recovery length on
             the validation split; the chosen model gets the build's full recovery, is exported (fp32 .tflite),
             verified on test by the gate and profiled (1 thread, host)
  l1         a fixed-budget build: L1, one shot, at the MAC reduction the search chose, same recovery and gate
  beta-rank  the same with β-rank

The contract "max drop X pp" sets both gate limits, ``--max-bal-acc-drop X --max-class-sensitivity-drop X``
(upper 95 % bootstrap bounds, the gate's own statistic). The dense model of a (dataset, model, seed) is trained
once and shared (its run directory is copied, so the train stage is skipped as unchanged).

Recorded per build: MAC reduction, p50 latency at 1 thread of the pruned and dense fp32 .tflite (speedup), the
test verdict and reasons, the validation verdict of the search's choice (val-vs-test agreement), wall seconds,
and the gate's power on val and test: a limit that a split's class sizes cannot certify (one lost correct
prediction already bounds the drop above the limit) is recorded as "uncertifiable", not as a search failure.

Results: benchmarks/results/search.json (one entry per build, written after each one: a killed run continues
where it stopped; rerunning skips the recorded entries) and, with --table, the Markdown table.

Full grid (hours on 2 shared cores):
  OMP_NUM_THREADS=1 PYTHONPATH=. nice -n 10 .venv/bin/python benchmarks/search.py \
      --datasets retinamnist,breastmnist --models resnet56,efficientnet_lite0 --contracts 1,3 --seeds 0,1
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
OUT = REPO / "benchmarks" / "results" / "search.json"
WORK = REPO / "benchmarks" / "runs" / "search"

# per model: zoo options and input size (the bake-off's small-input settings)
MODELS: dict[str, dict[str, Any]] = {
    "resnet56": {"model": {"name": "resnet56"}, "image_size": 32},
    "efficientnet_lite0": {"model": {"name": "efficientnet_lite0", "pretrained": True}, "image_size": 64},
}
SINGLE_SHOTS = ("l1", "beta-rank")


def base_config(a: argparse.Namespace, dataset: str, model: str, seed: int) -> dict[str, Any]:
    """The build settings every build of a (dataset, model, seed) shares."""
    spec = MODELS[model]
    model_cfg = dict(spec["model"])
    if a.width_mult is not None and model == "resnet56":
        model_cfg["width_mult"] = a.width_mult
    return {
        "seed": seed, "model": model_cfg,
        "data": {"source": str(DATA / f"{dataset}.npz"), "image_size": spec["image_size"]},
        "train": {"epochs": a.epochs, "patience": a.epochs},
        "finetune": {"epochs": a.finetune_epochs} if a.finetune_epochs is not None else {},
        "export": {"targets": ["tflite"], "precisions": ["fp32"], "export_dense": True},
        "profile": {"devices": ["host"], "threads": [1], "warmup": 5, "runs": a.profile_runs},
    }


def build_config(base: dict[str, Any], contract: float, a: argparse.Namespace, method: str,
                 level: float | None) -> Any:
    from edgeprune.api import make_config

    cfg = json.loads(json.dumps(base))
    cfg["verify"] = {"max_bal_acc_drop": contract, "max_class_sensitivity_drop": contract}
    if method == "search":
        cfg["search"] = {"trials": a.trials, "recovery_epochs": [int(x) for x in a.recovery_epochs.split(",")],
                         "criteria": a.criteria.split(",")}
    else:
        cfg["prune"] = {"criterion": method, "flops_reduction": round(level or 0.0, 4)}
    return make_config(cfg)


def dense_dir(a: argparse.Namespace, dataset: str, model: str, seed: int) -> Path:
    """Train (or find) the shared dense model: a run directory stopped after the train stage."""
    from rich.console import Console

    from edgeprune.api import make_config, run

    path = Path(a.work) / f"{dataset}-{model}-s{seed}" / "dense"
    if not (path / "models" / "dense.pt").is_file():
        print(f"[dense] training {dataset} {model} seed {seed}", flush=True)
        run(make_config(base_config(a, dataset, model, seed)), path, to_stage="train", console=Console(quiet=True))
    return path


def _latency(row: dict[str, Any]) -> float | None:
    lat = row.get("latency_p50_ms") or {}
    ones = [v for k, v in lat.items() if k.endswith(":1t") or k.endswith(":1")]
    return ones[0] if ones else (next(iter(lat.values())) if lat else None)


def _power(cfg: Any, result_dir: Path, report: dict[str, Any] | None) -> dict[str, Any]:
    """Which limits the val and test splits can certify (the report's gate.power, else computed the same way)."""
    power = (report or {}).get("gate", {}).get("power")
    if power is None:
        import numpy as np
        from rich.console import Console

        from edgeprune.gate import gate_power
        from edgeprune.pipeline.context import BuildContext

        ctx = BuildContext(cfg=cfg, run_dir=result_dir, console=Console(quiet=True))
        k = ctx.data.num_classes
        counts = {"val": np.bincount(ctx.data.val.y.numpy(), minlength=k).tolist(),
                  "test": ctx.data.test.class_counts(k)}
        power = gate_power(counts, ctx.data.contract.class_names, cfg.verify.max_class_sensitivity_drop,
                           cfg.verify.max_bal_acc_drop, cfg.verify.bootstrap)
    out = {}
    for split, sp in power["splits"].items():
        out[split] = {"bal_acc_certifiable": sp["bal_acc_certifiable"],
                      "uncertifiable_classes": {c["name"]: {"n": c["n"], "one_flip_ub_pp": c["one_flip_ub_pp"]}
                                                for c in sp["classes"] if not c["certifiable"]}}
    return out


def summarise_build(run_dir: Path, cfg: Any, seconds: float, error: Exception | None) -> dict[str, Any]:
    """The benchmark's numbers for one build, read from its report.json (and search/trials.json)."""
    from edgeprune.fsutil import read_json

    rep_path = run_dir / "report.json"
    report = read_json(rep_path) if rep_path.is_file() else None
    out: dict[str, Any] = {"seconds": round(seconds, 1), "error": str(error) if error else None}
    trials_path = run_dir / "search" / "trials.json"
    search = read_json(trials_path) if trials_path.is_file() else None
    if search is not None:
        chosen = next((t for t in search["trials"] if t["number"] == search["chosen"]), None)
        out["search"] = {
            "trials": len(search["trials"]), "seconds": search["seconds"],
            "states": {s: sum(t["state"] == s for t in search["trials"]) for s in ("complete", "pruned", "fail")},
            "val_feasible_trials": sum(bool(t["meets_contract"]) for t in search["trials"]),
            "chosen": None if chosen is None else {
                "number": chosen["number"], **chosen["params"], "macs_reduction": round(1 - chosen["cost"], 4),
                "val_bal_acc_drop_ub_pp": chosen["bal_acc_drop_ub_pp"],
                "val_worst_class_drop_ub_pp": chosen["worst_class_drop_ub_pp"]},
            "closest": _closest(search["trials"]) if chosen is None else None,
        }
    out["power"] = _power(cfg, run_dir, report)
    if search is not None:
        out["search_outcome"] = search_outcome(out)
    if report is None:
        return out
    rows = {r["variant"]: r for r in report["artifacts"] if r["precision"] == "fp32" and r["format"] == "tflite"}
    pruned, dense = rows.get("pruned"), rows.get("dense")
    if pruned is not None:
        gate = pruned.get("gate") or {}
        out.update(
            macs_reduction=round(1 - pruned["macs"] / dense["macs"], 4) if dense and dense.get("macs") else None,
            test_balanced_accuracy=pruned["balanced_accuracy"], test_passed=pruned["gate_passed"],
            test_reasons=pruned["gate_reasons"], test_bal_acc_drop_ub_pp=gate.get("bal_acc_drop_ub_pp"),
            test_worst_class_drop_ub_pp=gate.get("worst_class_drop_ub_pp"), test_worst_class=gate.get("worst_class"),
            latency_ms=_latency(pruned),
        )
    if dense is not None:
        out.update(dense_test_balanced_accuracy=dense["balanced_accuracy"], dense_latency_ms=_latency(dense))
    if pruned is not None and dense is not None:  # point estimates of the drops (the gate judges upper bounds)
        out["test_bal_acc_drop_pp"] = round(100 * (dense["balanced_accuracy"] - pruned["balanced_accuracy"]), 2)
        ds, ps = dense.get("per_class_sensitivity") or [], pruned.get("per_class_sensitivity") or []
        out["test_worst_class_drop_pp"] = round(max((100 * (d - q) for d, q in zip(ds, ps, strict=True)),
                                                default=0.0), 2)
    if out.get("latency_ms") and out.get("dense_latency_ms"):
        out["speedup"] = round(out["dense_latency_ms"] / out["latency_ms"], 3)
    out["limit"] = cfg.verify.max_bal_acc_drop
    out["verdict"] = verdict(out)
    return out


def _closest(trials: list[dict[str, Any]]) -> dict[str, Any] | None:
    scored = [t for t in trials if t["bal_acc_drop_ub_pp"] is not None and t["state"] in ("complete", "pruned")]
    if not scored:
        return None
    t = min(scored, key=lambda t: (max(t["bal_acc_drop_ub_pp"], t["worst_class_drop_ub_pp"]), t["number"]))
    return {"number": t["number"], **t["params"], "macs_reduction": round(1 - t["cost"], 4),
            "val_bal_acc_drop_ub_pp": t["bal_acc_drop_ub_pp"],
            "val_worst_class_drop_ub_pp": t["worst_class_drop_ub_pp"],
            "why_rejected": t["why_rejected"]}


def verdict(r: dict[str, Any]) -> str:
    """The test verdict of one build, with the gate's power taken into account.

    passed         the gate passed it
    failed         even the point estimate of a drop (overall or a class) is above the limit: a real loss
    uncertifiable  the point estimates are within the limit, but a broken bound is on a metric the test split
                   cannot certify at this limit (one lost correct prediction already bounds it above the limit)
    unproven       the point estimates are within the limit, the bound is not, and the split could certify it
    """
    if r.get("test_passed"):
        return "passed"
    if r.get("test_passed") is None:
        return "not-verified"
    limit = r.get("limit")
    points = [r.get("test_bal_acc_drop_pp"), r.get("test_worst_class_drop_pp")]
    if limit is None or any(p is None for p in points) or max(points) > limit:
        return "failed"
    test = (r.get("power") or {}).get("test", {})
    weak_bal = not test.get("bal_acc_certifiable", True) and (r.get("test_bal_acc_drop_ub_pp") or 0) > limit
    weak_class = r.get("test_worst_class") in test.get("uncertifiable_classes", {})
    return "uncertifiable" if weak_bal or weak_class else "unproven"


def point_rule(b: dict[str, Any], limit: float) -> str:
    """What a point-estimate, aggregate-metric rule (NNCF's accuracy-aware mode, the Beta-Rank paper's "no loss")
    would say on test: pass when the balanced-accuracy drop itself is within the limit, classes unchecked."""
    drop = b.get("test_bal_acc_drop_pp")
    return "–" if drop is None else ("pass" if drop <= limit else "fail")


def search_outcome(b: dict[str, Any]) -> str:
    """What the search said on validation: chose a trial, or none met the contract (and whether val could certify)."""
    srch = b.get("search") or {}
    if srch.get("chosen"):
        return "chose a trial"
    val = (b.get("power") or {}).get("val", {})
    if not val.get("bal_acc_certifiable", True) or val.get("uncertifiable_classes"):
        return "none met (val cannot certify the limit)"
    return "none met"


def same_shot(cell_dir: Path, method: str, cfg: Any) -> Path | None:
    """A finished single shot of another contract at the same budget: its pruned, recovered and exported files
    are the same (only the gate's limits differ), so copying it leaves only verify to rerun."""
    if method == "search":
        return None
    for other in sorted(cell_dir.glob(f"c*-{method}")):
        rep = other / "report.json"
        if rep.is_file() and json.loads(rep.read_text())["config"]["prune"] == cfg.prune.model_dump(mode="json"):
            return other
    return None


def run_one(a: argparse.Namespace, cell: dict[str, Any], method: str, level: float | None) -> dict[str, Any]:
    from rich.console import Console

    from edgeprune.api import run
    from edgeprune.errors import EdgepruneError

    base = base_config(a, cell["dataset"], cell["model"], cell["seed"])
    cfg = build_config(base, cell["contract"], a, method, level)
    src = dense_dir(a, cell["dataset"], cell["model"], cell["seed"])
    dst = src.parent / f"c{cell['contract']:g}-{method}"
    if not dst.exists():
        shutil.copytree(same_shot(src.parent, method, cfg) or src, dst)
    t0 = time.perf_counter()
    error = None
    try:
        run(cfg, dst, console=Console(quiet=True), command=["benchmarks/search.py", method])
    except EdgepruneError as exc:  # ContractNotMet (exit 3): no trial met the contract on validation
        error = exc
    return summarise_build(dst, cfg, time.perf_counter() - t0, error)


def cell_key(c: dict[str, Any]) -> str:
    return f"{c['dataset']}|{c['model']}|{c['contract']:g}pp|s{c['seed']}"


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {"cells": {}}


def save(path: Path, payload: dict[str, Any]) -> None:
    from edgeprune.fsutil import write_json_atomic

    write_json_atomic(path, payload)


def run_cell(a: argparse.Namespace, cell: dict[str, Any], payload: dict[str, Any], out: Path) -> None:
    key = cell_key(cell)
    entry = payload["cells"].setdefault(key, {**cell, "settings": settings_of(a), "builds": {}})
    builds = entry["builds"]
    if "search" not in builds:
        print(f"[{key}] search ({a.trials} trials)", flush=True)
        builds["search"] = run_one(a, cell, "search", None)
        save(out, payload)
    s = builds["search"]
    print(f"[{key}] search: {short(s)}", flush=True)
    chosen = (s.get("search") or {}).get("chosen") or (s.get("search") or {}).get("closest")
    level = s.get("macs_reduction") or (chosen or {}).get("macs_reduction")
    entry["single_shot_level"] = level
    entry["single_shot_level_from"] = ("search's chosen model" if s.get("macs_reduction") else
                                       "closest trial (the search chose none)" if level else None)
    for method in SINGLE_SHOTS:
        if method in builds or not level:
            continue
        print(f"[{key}] {method} at -{level:.1%} MACs", flush=True)
        builds[method] = run_one(a, cell, method, level)
        save(out, payload)
        print(f"[{key}] {method}: {short(builds[method])}", flush=True)
    entry["summary"] = cell_summary(entry)
    entry["done"] = True
    save(out, payload)


def short(r: dict[str, Any]) -> str:
    mr = r.get("macs_reduction")
    if mr is None:
        return f"no artifact ({(r.get('error') or '')[:160]}), {r['seconds']} s"
    return f"{r.get('verdict')}, -{100 * mr:.1f}% MACs, speedup {r.get('speedup')}, {r['seconds']} s"


def settings_of(a: argparse.Namespace) -> dict[str, Any]:
    return {"trials": a.trials, "dense_epochs": a.epochs, "recovery_epochs": a.recovery_epochs,
            "finetune_epochs": a.finetune_epochs if a.finetune_epochs is not None else "scaled (default)",
            "criteria": a.criteria, "width_mult": a.width_mult, "precisions": ["fp32"], "profile": "host, 1 thread",
            "image_size": {m: MODELS[m]["image_size"] for m in MODELS}}


# ---------------------------------------------------------------------------------------------------- tables

def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f}"


def _num(v: float | None, fmt: str = ".2f") -> str:
    return "–" if v is None else format(v, fmt)


def _pp(v: float | None) -> str:
    return "–" if v is None else f"{v:.1f}"


def cell_summary(c: dict[str, Any]) -> dict[str, Any]:
    """Per cell: what the search said on val, its test verdict, and the largest MAC cut that passed on test."""
    builds = c["builds"]
    s = builds.get("search", {})
    for b in builds.values():  # recomputed, so a stored entry follows the current verdict rule
        if b.get("test_passed") is not None:
            b["verdict"] = verdict({**b, "limit": b.get("limit", c["contract"])})
    chosen = (s.get("search") or {}).get("chosen")
    passing = [(b["macs_reduction"], m, b.get("speedup")) for m, b in builds.items()
               if b.get("verdict") == "passed" and b.get("macs_reduction") is not None]
    best = max(passing, default=None)
    return {
        "search_val": search_outcome(s) if s else "not run",
        "chosen": chosen,
        "search_test_verdict": s.get("verdict") if chosen else "test not read (nothing chosen)",
        "val_test_agree": None if not chosen else s.get("verdict") == "passed",
        "best_passing": None if best is None else {"macs_reduction": best[0], "method": best[1], "speedup": best[2]},
        "search_seconds": s.get("seconds"),
        "cell_seconds": round(sum(b.get("seconds", 0.0) for b in builds.values()), 1),
    }


def markdown_table(payload: dict[str, Any]) -> str:
    """Two tables: one line per cell, then one line per build (search and the single shots)."""
    lines = ["| data | model | contract | seed | search on val | chosen trial | search's test verdict | val = test | "
             "largest −MACs passing on test (speedup) | search s | cell s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for key in sorted(payload["cells"]):
        c = payload["cells"][key]
        cs = cell_summary(c)
        ch = cs["chosen"]
        chosen = "–" if not ch else f"{ch['criterion']}, −{100 * ch['macs_reduction']:.0f} %, {ch['epochs']} ep"
        agree = "–" if cs["val_test_agree"] is None else ("yes" if cs["val_test_agree"] else "no")
        bp = cs["best_passing"]
        best = "none" if bp is None else f"−{100 * bp['macs_reduction']:.1f} % ({bp['method']}, ×{_num(bp['speedup'])})"
        lines.append(f"| {c['dataset']} | {c['model']} | {c['contract']:g} pp | {c['seed']} | {cs['search_val']} | "
                     f"{chosen} | {cs['search_test_verdict']} | {agree} | {best} | {_num(cs['search_seconds'], '.0f')} "
                     f"| {cs['cell_seconds']:.0f} |")
    lines += ["", "| data | model | contract | seed | build | MACs −% | speedup (1 thread) | test bal. acc (dense) | "
              "drop point bal / worst class (pp) | drop upper bound bal / worst class (pp) | test verdict | "
              "aggregate point rule | wall s |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for key in sorted(payload["cells"]):
        c = payload["cells"][key]
        for method in ("search", *SINGLE_SHOTS):
            b = c["builds"].get(method)
            if b is None:
                continue
            if b.get("macs_reduction") is None:
                lines.append(f"| {c['dataset']} | {c['model']} | {c['contract']:g} pp | {c['seed']} | {method} | "
                             f"– | – | – | – | – | no artifact: {search_outcome(b)} | – | {b['seconds']:.0f} |")
                continue
            lines.append(
                f"| {c['dataset']} | {c['model']} | {c['contract']:g} pp | {c['seed']} | {method} | "
                f"{_pct(b.get('macs_reduction'))} | {_num(b.get('speedup'))} | {_pct(b.get('test_balanced_accuracy'))}"
                f" ({_pct(b.get('dense_test_balanced_accuracy'))}) | {_pp(b.get('test_bal_acc_drop_pp'))} / "
                f"{_pp(b.get('test_worst_class_drop_pp'))} | {_pp(b.get('test_bal_acc_drop_ub_pp'))} / "
                f"{_pp(b.get('test_worst_class_drop_ub_pp'))} | {b.get('verdict')} | {point_rule(b, c['contract'])} | "
                f"{b['seconds']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--datasets", default="retinamnist,breastmnist")
    ap.add_argument("--models", default="resnet56,efficientnet_lite0")
    ap.add_argument("--contracts", default="1,3", help="max drop in pp (both gate limits)")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--trials", type=int, default=6, help="search trials (the tool's default is 6)")
    ap.add_argument("--epochs", type=int, default=8, help="dense training epochs (pretrained models: fine-tuning)")
    ap.add_argument("--recovery-epochs", default="2,4", help="the search's recovery lengths per trial")
    ap.add_argument("--finetune-epochs", type=int, default=None, help="the build's recovery; default: scaled")
    ap.add_argument("--criteria", default="beta-rank,l1,taylor", help="the search's criteria")
    ap.add_argument("--width-mult", type=float, default=None, help="ResNet-56 width (bake-off: 0.5)")
    ap.add_argument("--profile-runs", type=int, default=30)
    ap.add_argument("--work", default=str(WORK), help="run directories (kept, so a killed run resumes)")
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--table", action="store_true", help="print the markdown table of --out and exit")
    a = ap.parse_args()
    out = Path(a.out)
    if a.table:
        print(markdown_table(load(out)))
        return
    import torch

    torch.set_num_threads(1)
    payload = load(out)
    start = time.perf_counter()
    for seed in (int(s) for s in a.seeds.split(",")):
        for model in a.models.split(","):
            for dataset in a.datasets.split(","):
                for contract in (float(c) for c in a.contracts.split(",")):
                    cell = {"dataset": dataset, "model": model, "contract": contract, "seed": seed}
                    if payload["cells"].get(cell_key(cell), {}).get("done"):
                        print(f"[{cell_key(cell)}] recorded, skipped", flush=True)
                        continue
                    run_cell(a, cell, payload, out)
    print(f"done in {time.perf_counter() - start:.0f} s; wrote {out}", flush=True)


if __name__ == "__main__":
    main()
