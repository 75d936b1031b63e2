"""Where trials run: in this process, in N local processes, or as tasks on a Ray cluster.

Every worker opens the same stored study and takes trials until the study has its total; the queue of the
first design and the trial seeds make each trial's result independent of the worker that ran it.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgeprune.config import MEMORY_DATA, BuildConfig
from edgeprune.errors import EdgepruneError
from edgeprune.models.user import MEMORY_PREFIX
from edgeprune.pipeline.context import PreparedData
from edgeprune.search.env import SearchEnv, set_threads
from edgeprune.search.study import _pruner, _sampler, _storage, counted, waiting
from edgeprune.search.trial import run_trial

OnTrial = Callable[[Any, Any], None]


def work(cfg: BuildConfig, run_dir: Path, name: str, url: str, total: int, *, data: PreparedData | None = None,
         on_trial: OnTrial | None = None, on_epoch: Callable[..., None] | None = None,
         threads: int | None = None) -> int:
    """Take trials from the stored study until it has ``total`` of them; returns how many this worker ran."""
    import optuna
    from rich.console import Console

    from edgeprune.search.noise import silence_python_noise

    silence_python_noise()
    if threads is not None:
        set_threads(threads)
    env = SearchEnv(cfg, Path(run_dir), Console(quiet=True), data, on_epoch)
    study = optuna.load_study(study_name=name, storage=_storage(url), sampler=_sampler(cfg), pruner=_pruner(cfg))
    ran = 0
    while waiting(study) > 0 or counted(study) < total:
        study.optimize(lambda t: run_trial(env, t), n_trials=1, catch=(EdgepruneError, ValueError),
                       callbacks=[on_trial] if on_trial else None)
        ran += 1
    return ran


def _process_main(cfg_json: dict[str, Any], run_dir: str, name: str, url: str, total: int, threads: int) -> None:
    work(BuildConfig.model_validate(cfg_json), Path(run_dir), name, url, total, threads=threads)


def portable_config(cfg: BuildConfig) -> dict[str, Any]:
    """The config for another process: paths made absolute (a Ray worker may start elsewhere)."""
    if cfg.data.source.startswith(MEMORY_DATA) or cfg.model.name.startswith(MEMORY_PREFIX):
        raise EdgepruneError("in-memory data or models cannot be shared with other worker processes",
                             "run the search with jobs=1, or save the data/model to files")
    data = cfg.data.model_copy()
    if data.source != "embedded" and Path(data.source).exists():
        data = data.model_copy(update={"source": str(Path(data.source).resolve())})
    updates: dict[str, Any] = {"data": data}
    if cfg.model.weights:
        updates["model"] = cfg.model.model_copy(update={"weights": str(Path(cfg.model.weights).resolve())})
    return cfg.model_copy(update=updates).model_dump(mode="json")


def run_processes(cfg: BuildConfig, run_dir: Path, name: str, url: str, total: int, jobs: int,
                  poll: Callable[[], None]) -> None:
    """``jobs`` spawned local processes share the study; ``poll`` refreshes the display meanwhile."""
    spawn = multiprocessing.get_context("spawn")
    threads = max(1, (os.cpu_count() or 1) // jobs)
    args = (portable_config(cfg), str(Path(run_dir).resolve()), name, url, total, threads)
    procs = [spawn.Process(target=_process_main, args=args, daemon=True) for _ in range(jobs)]
    for p in procs:
        p.start()
    try:
        while any(p.is_alive() for p in procs):
            poll()
            time.sleep(0.5)
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
            p.join()
    poll()
    failed = [p.exitcode for p in procs if p.exitcode]
    if failed:
        raise RuntimeError(f"{len(failed)} search worker process(es) failed (exit codes {failed}); "
                           f"see {Path(run_dir) / 'search' / 'search.log'}")


def _ray_task(cfg_json: dict[str, Any], run_dir: str, name: str, url: str, total: int) -> int:
    return work(BuildConfig.model_validate(cfg_json), Path(run_dir), name, url, total, threads=1)


def run_ray(cfg: BuildConfig, run_dir: Path, name: str, url: str, total: int, jobs: int, address: str,
            poll: Callable[[], None]) -> None:
    """Run ``jobs`` worker tasks on the Ray cluster at ``address`` (the study file must be reachable by them)."""
    try:
        import ray
    except ImportError:
        from edgeprune.errors import MissingExtraError

        raise MissingExtraError("ray", "ray") from None
    if not ray.is_initialized():
        env_vars = {k: os.environ[k] for k in ("PYTHONPATH", "OMP_NUM_THREADS") if k in os.environ}
        ray.init(address=address, runtime_env={"env_vars": env_vars}, log_to_driver=False,
                 logging_level="WARNING", include_dashboard=False)
    task = ray.remote(num_cpus=1)(_ray_task)
    args = (portable_config(cfg), str(Path(run_dir).resolve()), name, url, total)
    pending = [task.remote(*args) for _ in range(jobs)]
    while pending:
        _, pending = ray.wait(pending, timeout=0.5)
        poll()
    poll()
