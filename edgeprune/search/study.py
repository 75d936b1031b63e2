"""The Optuna study of a run: stored in ``<run>/search/study.db``, resumable, shared by local or Ray workers."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from edgeprune.config import BuildConfig

STUDY_DB = "study.db"
# settings that do not change what a trial computes (how many run at once, where)
_NOT_IN_KEY = {"jobs", "ray_address", "trials", "finalists", "latency_budget_ms", "size_budget_kb", "objective"}


def storage_url(search_dir: Path) -> str:
    return f"sqlite:///{Path(search_dir).resolve() / STUDY_DB}"


def study_name(cfg: BuildConfig, dense_sha256: str) -> str:
    """Trials of one study are comparable: same dense model, data, recovery and contract settings."""
    search = {k: v for k, v in cfg.search.model_dump(mode="json").items() if k not in _NOT_IN_KEY}
    search["cost"] = "params" if cfg.search.objective == "size" else "macs"
    key = {"search": search, "seed": cfg.seed, "dense": dense_sha256, "data": cfg.data.model_dump(mode="json"),
           "train": cfg.train.model_dump(mode="json"), "finetune": cfg.finetune.model_dump(mode="json"),
           "prune": {k: v for k, v in cfg.prune.model_dump(mode="json").items()
                     if k not in ("flops_reduction", "params_reduction", "criterion")},
           "verify": {k: cfg.verify.model_dump(mode="json")[k]
                      for k in ("max_bal_acc_drop", "max_class_sensitivity_drop", "bootstrap")}}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    return f"search-{digest}"


def _storage(url: str) -> Any:
    import optuna

    return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 120}})


def _pruner(cfg: BuildConfig) -> Any:
    import optuna

    longest = max(cfg.search.recovery_epochs)
    if cfg.search.pruner == "none":
        return optuna.pruners.NopPruner()
    if cfg.search.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=longest, reduction_factor=3)
    return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)


def _sampler(cfg: BuildConfig) -> Any:
    import optuna

    return optuna.samplers.TPESampler(seed=cfg.seed, n_startup_trials=max(4, len(cfg.search.criteria)))


def open_study(cfg: BuildConfig, url: str, name: str) -> Any:
    """Load the study or create it (then queue the first, deterministic design of trials)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=name, storage=_storage(url), direction="minimize",
                                sampler=_sampler(cfg), pruner=_pruner(cfg), load_if_exists=True)
    if not study.user_attrs.get("design_queued"):
        for params in initial_design(cfg):
            study.enqueue_trial(params, skip_if_exists=True)
        study.set_user_attr("design_queued", True)
    return study


def _snap(cfg: BuildConfig, value: float) -> float:
    s = cfg.search
    steps = round((value - s.min_level) / s.level_step)
    return round(min(s.max_level, s.min_level + steps * s.level_step), 6)


def initial_design(cfg: BuildConfig) -> list[dict[str, Any]]:
    """A deterministic start: every criterion once, each trial at its own level spread evenly over the range,
    so both gentle and deep cuts are tried. It takes at most half of a large budget (two rounds of criteria) and
    leaves the rest to the sampler; these trials get the longest recovery (the pruner still stops the trailing
    ones early)."""
    s = cfg.search
    crits = list(s.criteria)
    n = max(min(len(crits), s.trials), min(s.trials // 2, 2 * len(crits)))
    epochs = max(s.recovery_epochs)
    return [{"criterion": crits[i % len(crits)],
             "level": _snap(cfg, s.min_level + (s.max_level - s.min_level) * (i + 1) / (n + 1)),
             "epochs": epochs} for i in range(n)]


def requeue_killed(study: Any) -> int:
    """Trials left RUNNING by a killed process fail, and their parameters go back in the queue."""
    from optuna.trial import TrialState

    killed = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study._storage.set_trial_user_attr(t._trial_id, "killed", True)
        study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        study.enqueue_trial(t.params, skip_if_exists=False)
        killed += 1
    return killed


def counted(study: Any) -> int:
    """Trials that count towards the study's total: finished, stopped, failed on their own, or running."""
    from optuna.trial import TrialState

    done = 0
    for t in study.get_trials(deepcopy=False):
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING):
            done += 1
        elif t.state == TrialState.FAIL and not t.user_attrs.get("killed"):
            done += 1
    return done


def waiting(study: Any) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
