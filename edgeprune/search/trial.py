"""One trial: prune the dense model at a MAC reduction with a criterion, recover for some epochs, score on val.

After every recovery epoch the validation score is reported to Optuna, whose pruner stops unpromising trials
early (the cheap part of the search); trials that survive get their full recovery length.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from edgeprune.budget import Budget
from edgeprune.pipeline.checkpoints import save_checkpoint
from edgeprune.pipeline.pruning import prune_context, settings_from_config
from edgeprune.pipeline.recovery import recover
from edgeprune.prune.criteria import create_criterion
from edgeprune.search.contract import ValScore, penalised, score_on_val
from edgeprune.search.env import SearchEnv


def trial_seed(study_seed: int, number: int) -> int:
    """Every trial's seed follows from the study seed and the trial number alone."""
    return (study_seed * 100_003 + number * 7_919) % (2**31 - 1)


def _cost(env: SearchEnv, macs: int, params: int) -> float:
    """The proxy cost the search minimises: remaining fraction of MACs (latency, macs) or of params (size)."""
    dense_macs, dense_params = env.dense_counts
    return params / dense_params if env.cfg.search.objective == "size" else macs / dense_macs


def run_trial(env: SearchEnv, trial: Any) -> float:
    """The Optuna objective: returns the penalised cost; records the details as user attributes."""
    import optuna

    s = env.cfg.search
    criterion = trial.suggest_categorical("criterion", list(s.criteria))
    level = trial.suggest_float("level", s.min_level, s.max_level, step=s.level_step)
    epochs = trial.suggest_categorical("epochs", list(s.recovery_epochs))
    seed = trial_seed(env.cfg.seed, trial.number)
    trial.set_user_attr("seed", seed)
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    ctx = env.ctx
    from edgeprune.config import split_criterion

    name, options = split_criterion(criterion)
    try:
        result = _prune(env, name, options, level, seed)
    except Exception as exc:  # noqa: BLE001 - an unreachable level is a failed trial, not a failed search
        trial.set_user_attr("error", f"{type(exc).__name__}: {exc}")
        raise
    model = result.model
    cost = _cost(env, result.macs, result.params)
    trial.set_user_attr("macs", int(result.macs))
    trial.set_user_attr("params", int(result.params))
    trial.set_user_attr("cost", cost)
    labels = ctx.data.val.y.numpy()
    names = ctx.data.contract.class_names
    step = {"n": 0}

    def on_epoch(_: dict[str, float]) -> None:
        step["n"] += 1
        score = score_on_val(env.dense_val_logits, env.val_logits(model), labels, names, env.contract, seed)
        trial.report(penalised(cost, score), step["n"])
        trial.set_user_attr("last", score.as_dict())
        if env.on_epoch is not None:
            env.on_epoch(trial.number, dict(trial.params), step["n"], score.as_dict())
        if trial.should_prune():
            trial.set_user_attr("stopped_after_epochs", step["n"])
            raise optuna.TrialPruned(f"stopped after {step['n']} recovery epoch(s)")

    out = recover(ctx, model, "finetune", env.dense, seed=seed, on_epoch=on_epoch, epochs=epochs)
    if out is not None:
        model = out.model
    score = score_on_val(env.dense_val_logits, env.val_logits(model), labels, names, env.contract, seed)
    _record(trial, score, time.perf_counter() - t0)
    save_checkpoint(env.trial_checkpoint(trial.number), model, result.plan,
                    meta={"stage": "search", "trial": trial.number, "criterion": criterion, "level": level})
    return penalised(cost, score)


def _prune(env: SearchEnv, name: str, options: dict[str, Any], level: float, seed: int) -> Any:
    from edgeprune.prune.engine import prune_model

    ctx = env.ctx
    budget = Budget("flops", level, env.cfg.prune.tolerance)
    pctx = prune_context(ctx)
    pctx.seed = seed
    pctx.log = lambda msg: None
    return prune_model(env.dense, create_criterion(name, **options), budget, pctx, settings_from_config(ctx),
                       env.dense_counts)


def _record(trial: Any, score: ValScore, seconds: float) -> None:
    trial.set_user_attr("val", score.as_dict())
    trial.set_user_attr("seconds", round(seconds, 2))
