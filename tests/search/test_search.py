"""The accuracy-constrained search on a tiny real model: chosen trial, contract on val, exit 3, test-split guard."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from edgeprune.fsutil import read_json
from edgeprune.pipeline import run_build
from edgeprune.pipeline.context import TestSplitAccessError
from edgeprune.rundir.paths import PRUNED
from edgeprune.search.errors import ContractNotMet
from tests.search.conftest import search_config, write_toml

ROOT = Path(__file__).resolve().parents[2]


def _finished_trials(run: Path) -> list[tuple[int, str, str]]:
    """(number, state, datetime_complete) of every finished trial in the stored study."""
    with sqlite3.connect(run / "search" / "study.db") as db:
        return db.execute("SELECT number, state, datetime_complete FROM trials "
                          "WHERE state IN ('COMPLETE', 'PRUNED') ORDER BY number").fetchall()


def test_no_budget_means_search_and_a_budget_keeps_the_single_shot() -> None:
    assert search_config().searches()
    assert not search_config(prune={"flops_reduction": 0.5}).searches()
    assert not search_config(search={"enabled": False}).searches()


def test_search_chooses_a_trial_that_meets_a_loose_contract_on_validation(
        run_copy: Path, capfd: pytest.CaptureFixture[str]) -> None:
    cfg = search_config(search={"objective": "latency", "finalists": 2})
    out = run_build(cfg, run_copy, to_stage="finetune", console=Console(quiet=True), command=["pytest"])
    noise = capfd.readouterr().err
    assert "FutureWarning" not in noise and "XNNPACK" not in noise, noise[-2000:]
    assert (run_copy / "search" / "search.log").is_file()  # (a warning shown earlier in the process is not repeated)
    assert out.ran == ["prune", "finetune"]
    summary = out.outcomes.prune.search  # type: ignore[union-attr]
    chosen = [t for t in summary["trials"] if t["number"] == summary["chosen"]]
    assert len(chosen) == 1 and chosen[0]["meets_contract"] is True and chosen[0]["why_rejected"] is None
    assert chosen[0]["bal_acc_drop_ub_pp"] <= cfg.verify.max_bal_acc_drop
    # the finalists (the feasible trials with the fewest MACs) were exported and timed; the fastest was chosen
    finalists = [t for t in summary["trials"] if t["finalist"]]
    assert 1 <= len(finalists) <= 2 and all(t["latency_ms"] > 0 and t["size_kb"] > 0 for t in finalists)
    assert chosen[0]["finalist"] and chosen[0]["latency_ms"] == min(t["latency_ms"] for t in finalists)
    ok = [t for t in summary["trials"] if t["meets_contract"] and not t["finalist"]]
    assert all(t["macs"] >= max(f["macs"] for f in finalists) for t in ok)
    assert all(t["why_rejected"] for t in summary["trials"] if t["number"] != summary["chosen"])
    assert summary["contract"]["split"] == "val"
    assert len(_finished_trials(run_copy)) == cfg.search.trials
    assert (run_copy / PRUNED).is_file() and (run_copy / "search" / "trials.json").is_file()
    finetune = out.outcomes.finetune  # the chosen trial then gets the full recovery (trials recover briefly)
    assert finetune is not None and finetune.continued_from == "the search's chosen trial"


def test_search_reads_no_test_data(run_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The search runs with the test split replaced by a guard; a trial that touches it fails the search."""
    from edgeprune.search import env as env_mod
    from edgeprune.search import trial as trial_mod

    seen: list[int] = []
    original = env_mod.SearchEnv.val_logits

    def val_only(self, model):  # every evaluation in the search goes through here: val tensors only
        seen.append(len(self.ctx.data.val.y))
        with pytest.raises(TestSplitAccessError):
            _ = self.ctx.data.test.x
        with pytest.raises(TestSplitAccessError, match="during the search"):
            self.ctx.data.test.read("a peek")
        return original(self, model)

    monkeypatch.setattr(env_mod.SearchEnv, "val_logits", val_only)
    cfg = search_config(search={"trials": 2, "recovery_epochs": [1]})
    run_build(cfg, run_copy, to_stage="prune", console=Console(quiet=True), command=["pytest"])
    assert seen and set(seen) == {int(read_json(run_copy / "manifest.json")["data"]["sizes"]["val"])}

    def reads_test(env, trial):
        return float(env.ctx.data.test.read("a trial").x.sum())

    monkeypatch.setattr(trial_mod, "run_trial", reads_test)
    from edgeprune.search import workers

    monkeypatch.setattr(workers, "run_trial", reads_test)
    with pytest.raises(TestSplitAccessError):
        run_build(search_config(search={"trials": 3, "recovery_epochs": [2]}), run_copy, to_stage="prune",
                  console=Console(quiet=True), command=["pytest"])


def test_impossible_contract_exits_3_naming_the_closest_trial(run_copy: Path, tmp_path: Path) -> None:
    cfg = search_config(search={"trials": 2, "recovery_epochs": [1]})
    toml = write_toml(tmp_path / "s.toml", cfg)
    proc = subprocess.run([sys.executable, "-m", "edgeprune", "build", "--config", str(toml), "--out", str(run_copy),
                           "--min-class-sensitivity", "100"], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "COLUMNS": "200"}, timeout=300)
    assert proc.returncode == 3, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "no model meets the contract" in proc.stdout
    assert "the closest is trial" in proc.stdout and "(floor 100 %)" in proc.stdout
    trials = read_json(run_copy / "search" / "trials.json")
    assert trials["chosen"] is None and all(t["why_rejected"] for t in trials["trials"])
    assert not (run_copy / PRUNED).exists() and not (run_copy / "artifacts").exists()


def test_contract_not_met_is_a_user_error_with_exit_code_3() -> None:
    assert ContractNotMet("x", "y").exit_code == 3


def test_report_json_and_html_show_the_search(run_copy: Path) -> None:
    from edgeprune.report import write_html_report
    from edgeprune.report.json_report import write_report_json
    from edgeprune.report.schema import validate_report
    from edgeprune.rundir.artifacts import artifact_rows
    from edgeprune.rundir.manifest import load_manifest

    run_build(search_config(search={"trials": 2, "recovery_epochs": [1]}), run_copy, to_stage="prune",
              console=Console(quiet=True), command=["pytest"])
    manifest = load_manifest(run_copy)
    report = validate_report(write_report_json(run_copy, manifest, artifact_rows(manifest.outcomes())))
    assert report.search is not None and report.search.chosen is not None and len(report.search.trials) == 2
    assert report.prune is not None and "search" not in report.prune.model_dump()
    html = write_html_report([run_copy], run_copy / "report.html").read_text(encoding="utf-8")
    section = html.split('id="search"', 1)[1].split("</section>", 1)[0]
    assert "data:image/png;base64," in section and "★" in section and "why not chosen" in section


def test_a_fixed_budget_has_no_search_section(dense_run: Path, tmp_path: Path) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(dense_run, run)
    out = run_build(search_config(prune={"flops_reduction": 0.4}), run, to_stage="prune",
                    console=Console(quiet=True), command=["pytest"])
    assert getattr(out.outcomes.prune, "search", None) is None and not (run / "search").exists()


def test_an_unreachable_latency_budget_names_the_budget(run_copy: Path) -> None:
    cfg = search_config(search={"trials": 2, "recovery_epochs": [1], "objective": "latency", "finalists": 1,
                                "latency_budget_ms": 1e-6})
    with pytest.raises(ContractNotMet, match=r"closest is trial \d+ .*over the budget 1e-06 ms"):
        run_build(cfg, run_copy, to_stage="prune", console=Console(quiet=True), command=["pytest"])
    trials = read_json(run_copy / "search" / "trials.json")["trials"]
    assert [t["finalist"] for t in trials].count(True) == 1 and all(t["why_rejected"] for t in trials)
