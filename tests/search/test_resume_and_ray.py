"""The stored study: a killed search resumes without redoing finished trials; Ray workers equal local ones."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console

from edgeprune.pipeline import run_build
from tests.search.conftest import search_config, write_toml

ROOT = Path(__file__).resolve().parents[2]
LIMIT_S = 300


def _trials(run: Path, states: tuple[str, ...] = ("COMPLETE", "PRUNED")) -> list[tuple[int, str, str]]:
    db = run / "search" / "study.db"
    if not db.is_file():
        return []
    try:
        with sqlite3.connect(db, timeout=30) as con:
            marks = ",".join("?" * len(states))
            return con.execute(f"SELECT number, state, datetime_complete FROM trials WHERE state IN ({marks}) "
                               "ORDER BY number", states).fetchall()
    except sqlite3.OperationalError:  # the study tables are not created yet
        return []


def _killed(run: Path, number: int) -> bool:
    with sqlite3.connect(run / "search" / "study.db") as con:
        row = con.execute("SELECT a.value_json FROM trials t JOIN trial_user_attributes a ON a.trial_id = t.trial_id "
                          "WHERE t.number = ? AND a.key = 'killed'", (number,)).fetchone()
    return row is not None


def _search_cmd(toml: Path, run: Path) -> list[str]:
    code = ("import sys; from pathlib import Path; from rich.console import Console; "
            "from edgeprune.config import load_config; from edgeprune.api import run; "
            "run(load_config(sys.argv[1]), Path(sys.argv[2]), to_stage='prune', console=Console(quiet=True))")
    return [sys.executable, "-c", code, str(toml), str(run)]


def test_a_killed_search_resumes_without_redoing_finished_trials(run_copy: Path, tmp_path: Path) -> None:
    cfg = search_config(search={"trials": 5, "recovery_epochs": [2], "pruner": "none"})
    toml = write_toml(tmp_path / "s.toml", cfg)
    log = tmp_path / "first.log"
    proc = subprocess.Popen(_search_cmd(toml, run_copy), cwd=ROOT, stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + LIMIT_S
    while len(_trials(run_copy)) < 2:
        assert proc.poll() is None, f"the search ended before the kill:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, "the search never finished two trials"
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = _trials(run_copy)
    assert 2 <= len(before) < cfg.search.trials
    again = subprocess.run(_search_cmd(toml, run_copy), cwd=ROOT, capture_output=True, text=True, timeout=LIMIT_S)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    after = _trials(run_copy)
    # the trials finished before the kill are still there, untouched (same numbers, same completion time) ...
    assert set(before) <= set(after)
    # ... and the study ran only the rest: `trials` trials in all (a trial may fail on its own: a level the
    # architecture cannot reach); the one killed mid-way failed and was run again under a new number
    failed = _trials(run_copy, ("FAIL",))
    killed = [t for t in failed if _killed(run_copy, t[0])]
    assert len(killed) <= 1
    assert len(after) + len(failed) - len(killed) == cfg.search.trials
    assert (run_copy / "models" / "pruned.pt").is_file()


def _lane_trials(dense_run: Path, tmp_path: Path, lane: str, **search: object) -> dict[int, dict]:
    """Run the same 2-trial study in one lane; each trial's params, seed and validation scores by number."""
    import shutil

    from edgeprune.fsutil import read_json

    run = tmp_path / lane
    shutil.copytree(dense_run, run)
    cfg = search_config(search={"trials": 2, "criteria": ["l1"], "recovery_epochs": [1], "pruner": "none", **search})
    run_build(cfg, run, to_stage="prune", console=Console(quiet=True), command=["pytest", lane])
    trials = read_json(run / "search" / "trials.json")["trials"]
    keys = ("params", "seed", "macs", "val_balanced_accuracy", "bal_acc_drop_ub_pp", "worst_class_drop_ub_pp", "state")
    return {t["number"]: {k: t[k] for k in keys} for t in trials}


@pytest.mark.timeout(600)
def test_ray_workers_give_the_same_trials_as_the_local_path(dense_run: Path, tmp_path: Path) -> None:
    """A local Ray cluster started here (2 CPUs) runs the study's trials as tasks; same seeds, same results."""
    ray = pytest.importorskip("ray")
    local = _lane_trials(dense_run, tmp_path, "local", jobs=1)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.environ.get("PYTHONPATH", str(ROOT)), "OMP_NUM_THREADS": "1"}})
    try:
        on_ray = _lane_trials(dense_run, tmp_path, "ray", jobs=2, ray_address="local")
    finally:
        ray.shutdown()
    assert len(local) == 2 and all(t["state"] == "complete" for t in local.values())
    assert on_ray == local


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_local_worker_processes_give_the_same_trials_as_one_process(dense_run: Path, tmp_path: Path) -> None:
    single = _lane_trials(dense_run, tmp_path, "single", jobs=1)
    assert _lane_trials(dense_run, tmp_path, "two", jobs=2) == single
