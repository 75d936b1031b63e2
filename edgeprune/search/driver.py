"""Run the search of a build: open (or resume) the study, run the trials, time the finalists, choose one.

Cheap and expensive trials: every trial prunes and starts recovering; after each recovery epoch its validation
score goes to Optuna's pruner (successive halving by default), which stops the trials that trail the others
at the same epoch, so only promising trials run their full recovery length. The objective during the trials
is a cheap proxy (remaining MACs, or params for ``size``); the best feasible trials (``finalists``) are then
exported to fp32 .tflite and timed on the first profile device at 1 thread, and the objective picks among them.
Nothing here reads the test split: the build context's test split is replaced by a guard that raises.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch.nn as nn

from edgeprune.fsutil import write_json_atomic
from edgeprune.pipeline.checkpoints import load_checkpoint
from edgeprune.pipeline.context import BuildContext
from edgeprune.prune.plan import PruningPlan
from edgeprune.rundir.files import digest
from edgeprune.rundir.paths import DENSE
from edgeprune.search.env import SEARCH_DIR, SearchEnv
from edgeprune.search.errors import ContractNotMet
from edgeprune.search.noise import stderr_to
from edgeprune.search.progress import SearchProgress, trial_row
from edgeprune.search.study import STUDY_DB, counted, open_study, requeue_killed, storage_url, study_name

TRIALS_JSON = "trials.json"
SEARCH_LOG = "search.log"


@dataclass
class SearchOutcome:
    model: nn.Module
    plan: PruningPlan
    chosen: dict[str, Any]
    summary: dict[str, Any]  # report.json's ``search`` section


def _objective_value(row: dict[str, Any], objective: str) -> float | None:
    if objective == "latency":
        return row.get("latency_ms")
    if objective == "size":
        return row.get("size_kb")
    return float(row["macs"]) if row.get("macs") is not None else None


def _budget_breaks(row: dict[str, Any], cfg: Any) -> list[str]:
    s, out = cfg.search, []
    if s.latency_budget_ms is not None and (row.get("latency_ms") is None or row["latency_ms"] > s.latency_budget_ms):
        out.append(f"latency {row.get('latency_ms')} ms is over the budget {s.latency_budget_ms:g} ms")
    if s.size_budget_kb is not None and (row.get("size_kb") is None or row["size_kb"] > s.size_budget_kb):
        out.append(f"size {row.get('size_kb')} KB is over the budget {s.size_budget_kb:g} KB")
    return out


def _why_rejected(row: dict[str, Any]) -> str | None:
    if row["state"] == "pruned":
        return f"stopped after {row['stopped_after_epochs']} recovery epoch(s): trailing the others on validation"
    if row["state"] == "fail":
        return "killed mid-trial, requeued" if row["killed"] else f"failed: {row['error']}"
    if row["state"] != "complete":
        return f"not finished ({row['state']})"
    reasons = list((row["val"] or {}).get("broken") or []) + list(row.get("budget_broken") or [])
    return "; ".join(reasons) if reasons else None


def choose(env: SearchEnv, rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The feasible trial with the best objective (finalists timed for real when the objective needs it)."""
    cfg = env.cfg
    feasible = sorted((r for r in rows if r["state"] == "complete" and not r["val"].get("broken")),
                      key=lambda r: (r["cost"], -r["val"]["balanced_accuracy"], r["number"]))
    if not feasible:
        return None
    needs_files = (cfg.search.objective in ("latency", "size") or cfg.search.latency_budget_ms is not None
                   or cfg.search.size_budget_kb is not None)
    finalists = feasible[: cfg.search.finalists] if needs_files else feasible
    if needs_files:
        from edgeprune.search.finalists import measure

        measure(env, finalists)
    for r in finalists:
        r["finalist"] = True
        r["budget_broken"] = _budget_breaks(r, cfg)
        r["objective_value"] = _objective_value(r, cfg.search.objective)
    ok = [r for r in finalists if not r["budget_broken"] and r["objective_value"] is not None]
    if not ok:
        return None
    return min(ok, key=lambda r: (r["objective_value"], r["cost"], r["number"]))


def closest(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The trial nearest to qualifying: a finalist that only broke a hard budget, else the smallest overshoot."""
    over_budget = [r for r in rows if r.get("budget_broken")]
    if over_budget:
        return min(over_budget, key=lambda r: (r.get("objective_value") is None, r.get("objective_value") or 0.0,
                                               r["number"]))
    scored = [r for r in rows if r["val"] and r["state"] in ("complete", "pruned")]
    if not scored:
        return None
    return min(scored, key=lambda r: (r["val"].get("excess", 0.0), -r["val"]["balanced_accuracy"], r["number"]))


def summarise(env: SearchEnv, name: str, rows: list[dict[str, Any]], chosen: dict[str, Any] | None,
              seconds: float) -> dict[str, Any]:
    cfg = env.cfg
    for r in rows:
        r["why_rejected"] = None if chosen is not None and r["number"] == chosen["number"] else (
            _why_rejected(r) or "met the contract, but another trial had a better objective")
        r.setdefault("objective_value", _objective_value(r, cfg.search.objective) if cfg.search.objective == "macs"
                     else None)
    return {
        "study": name, "storage": f"{SEARCH_DIR}/{STUDY_DB}", "objective": cfg.search.objective,
        "proxy": "params" if cfg.search.objective == "size" else "macs",
        "contract": {"max_bal_acc_drop": cfg.verify.max_bal_acc_drop,
                     "max_class_sensitivity_drop": cfg.verify.max_class_sensitivity_drop,
                     "min_class_sensitivity": cfg.search.min_class_sensitivity,
                     "latency_budget_ms": cfg.search.latency_budget_ms, "size_budget_kb": cfg.search.size_budget_kb,
                     "split": "val"},
        "space": {"criteria": list(cfg.search.criteria), "levels": [cfg.search.min_level, cfg.search.max_level],
                  "level_step": cfg.search.level_step, "recovery_epochs": list(cfg.search.recovery_epochs)},
        "pruner": cfg.search.pruner, "jobs": cfg.search.jobs, "ray_address": cfg.search.ray_address,
        "dense_macs": env.dense_counts[0], "dense_params": env.dense_counts[1],
        "val_size": int(len(env.ctx.data.val.y)),
        "dense_val_balanced_accuracy": _bal_acc(env),
        "seconds": round(seconds, 2),
        "chosen": chosen["number"] if chosen is not None else None,
        "trials": [_public(r) for r in sorted(rows, key=lambda r: r["number"])],
    }


def _bal_acc(env: SearchEnv) -> float:
    from edgeprune.metrics import classification_metrics

    labels = env.ctx.data.val.y.numpy()
    return float(classification_metrics(env.dense_val_logits, labels, len(env.ctx.data.contract.class_names))
                 .balanced_accuracy)


def _public(r: dict[str, Any]) -> dict[str, Any]:
    v = r["val"] or {}
    return {
        "number": r["number"], "state": r["state"],
        "params": {"criterion": r["criterion"], "level": r["level"], "epochs": r["epochs"]},
        "seed": r["seed"], "macs": r["macs"], "cost": r["cost"],
        "val_balanced_accuracy": v.get("balanced_accuracy"), "val_worst_class": v.get("worst_class"),
        "val_worst_class_sensitivity": v.get("worst_class_sensitivity"),
        "bal_acc_drop_ub_pp": v.get("bal_acc_drop_ub_pp"), "worst_class_drop_ub_pp": v.get("worst_class_drop_ub_pp"),
        "meets_contract": (not v.get("broken")) if v and r["state"] == "complete" else None,
        "latency_ms": r.get("latency_ms"), "size_kb": r.get("size_kb"), "objective_value": r.get("objective_value"),
        "finalist": bool(r.get("finalist")), "seconds": r.get("seconds"), "why_rejected": r.get("why_rejected"),
    }


def run_search(ctx: BuildContext) -> SearchOutcome:
    """Search the run's compression (resuming a stored study); raises ContractNotMet when nothing qualifies."""
    import time

    cfg = ctx.cfg
    t0 = time.perf_counter()
    env = SearchEnv(cfg, ctx.run_dir, ctx.console, data=ctx.data)
    env.search_dir.mkdir(parents=True, exist_ok=True)
    url = storage_url(env.search_dir)
    name = study_name(cfg, digest(ctx.path(DENSE)))
    total = cfg.search.trials
    with stderr_to(env.search_dir / SEARCH_LOG):
        study = open_study(cfg, url, name)
        killed = requeue_killed(study)
        done_before = counted(study)
        if killed:
            ctx.console.print(f"  [yellow]{killed} trial(s) of an interrupted search will be rerun[/yellow]")
        if done_before:
            ctx.console.print(f"  [dim]resuming study {name}: {done_before}/{total} trials already done[/dim]")
        ctx.console.print(f"  no fixed budget given: searching {total} trials for the smallest {cfg.search.objective} "
                          f"that meets the contract on the validation split (the test split is read once, after)")
        ctx.console.print(f"  [dim]search log (third-party messages): {env.search_dir / SEARCH_LOG}[/dim]")
        progress = SearchProgress(ctx.console, total, env.contract.describe())
        with progress:
            progress.update_trials(study.get_trials(deepcopy=False))

            def poll() -> None:
                progress.update_trials(study.get_trials(deepcopy=False))

            if cfg.search.ray_address:
                from edgeprune.search.workers import run_ray

                run_ray(cfg, ctx.run_dir, name, url, total, cfg.search.jobs, cfg.search.ray_address, poll)
            elif cfg.search.jobs > 1:
                from edgeprune.search.workers import run_processes

                run_processes(cfg, ctx.run_dir, name, url, total, cfg.search.jobs, poll)
            else:
                from edgeprune.search.workers import work

                work(cfg, ctx.run_dir, name, url, total, data=ctx.data, on_trial=progress.on_trial,
                     on_epoch=progress.running)
        ctx.console.print()
        rows = [trial_row(t) for t in study.get_trials(deepcopy=False) if t.state.name != "WAITING"]
        chosen = choose(env, rows)
    summary = summarise(env, name, rows, chosen, time.perf_counter() - t0)
    write_json_atomic(env.search_dir / TRIALS_JSON, summary)
    if chosen is None:
        raise _no_trial(env, rows)
    model, plan = load_checkpoint(env.trial_checkpoint(chosen["number"]), ctx.fresh_model(), ctx.example_input)
    v = chosen["val"]
    ctx.console.print(f"  [green]chosen: trial {chosen['number']} ({chosen['criterion']}, -{1 - chosen['cost']:.0%} "
                      f"{summary['proxy']}, {chosen['epochs']} recovery epochs): val balanced accuracy "
                      f"{100 * v['balanced_accuracy']:.1f}%, worst class {v['worst_class']} "
                      f"{100 * v['worst_class_sensitivity']:.0f}%[/green]")
    return SearchOutcome(model=model, plan=plan, chosen=chosen, summary=summary)


def _no_trial(env: SearchEnv, rows: list[dict[str, Any]]) -> ContractNotMet:
    near = closest(rows)
    where = f"{env.search_dir / TRIALS_JSON}"
    if near is None:
        return ContractNotMet(f"no trial of the search meets the contract ({env.contract.describe()}): no trial "
                              "finished", f"see {where}; loosen the contract or give a fixed --flops-reduction")
    broke = (list(near["val"].get("broken") or []) + list(near.get("budget_broken") or []))
    limit = broke[0] if broke else "it was stopped before its full recovery"
    return ContractNotMet(
        f"no trial of the search meets the contract; the closest is trial {near['number']} ({near['criterion']}, "
        f"-{near['level']:.0%} MACs, {near['epochs']} epochs), which broke it: {limit}",
        f"loosen --max-bal-acc-drop / --max-class-sensitivity-drop, allow more trials or longer recovery, or "
        f"give a fixed --flops-reduction (details: {where})")
