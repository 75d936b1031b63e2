"""The bake-off: same budgets, same dense model, identical recovery; resumable; JSON + PNG."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from edgeprune.cli import app

runner = CliRunner()
ARGS = ["compare", "--criteria", "l1,random", "--flops-reduction", "0.3", "--seeds", "2", "--model", "test_tinycnn",
        "--epochs", "1", "--finetune-epochs", "1", "--max-train", "150"]


def test_compare_writes_table_plot_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "bake"
    result = runner.invoke(app, [*ARGS, "--out", str(out)])
    assert result.exit_code == 0, result.output
    payload = json.loads((out / "compare.json").read_text())
    assert payload["complete"] is True
    rows = payload["rows"]
    assert {(r["criterion"], r["seed"]) for r in rows} == {
        (c, s) for c in ("l1", "random", "scratch-l1-arch") for s in (0, 1)}
    for r in rows:
        assert abs(r["achieved_reduction"] - 0.3) <= 0.02 and r["warnings"] == []
        assert 0 <= r["test"]["balanced_accuracy"] <= 1
    # every pruned model starts from the same dense model: the dense MACs are shared
    assert len({r["macs"] for r in rows if r["criterion"] == "l1"}) == 1
    table = {t["criterion"]: t for t in payload["table"]}
    l1 = [r["test"]["balanced_accuracy"] for r in rows if r["criterion"] == "l1"]
    assert abs(table["l1"]["balanced_accuracy"]["mean"] - round(sum(l1) / 2, 4)) < 1e-3
    assert len(table["l1"]["per_class_sensitivity"]["mean"]) == 5
    # the scratch baseline trained the pruned architecture with the dense schedule
    assert all(r["recovery"] == "train-from-scratch" for r in rows if r["criterion"] == "scratch-l1-arch")
    assert (out / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # rerun: nothing is recomputed (same rows, same timings)
    again = runner.invoke(app, [*ARGS, "--out", str(out)])
    assert again.exit_code == 0, again.output
    assert json.loads((out / "compare.json").read_text())["rows"] == rows
    # a settings change that cannot alter a row (export/verify/profile) keeps the finished rows (a planted
    # marker survives) ...
    payload = json.loads((out / "compare.json").read_text())
    payload["config"]["export"]["precisions"] = ["fp32"]
    payload["rows"][0]["test"]["balanced_accuracy"] = -1.0
    (out / "compare.json").write_text(json.dumps(payload))
    assert runner.invoke(app, [*ARGS, "--out", str(out)]).exit_code == 0
    kept = json.loads((out / "compare.json").read_text())["rows"]
    assert kept[0]["test"]["balanced_accuracy"] == -1.0 and kept[1:] == rows[1:]
    # ... while one that can (the recovery schedule) recomputes every row (the marker is gone)
    payload["config"]["finetune"]["epochs"] = 7
    (out / "compare.json").write_text(json.dumps(payload))
    assert runner.invoke(app, [*ARGS, "--out", str(out)]).exit_code == 0
    rerun = json.loads((out / "compare.json").read_text())["rows"]
    assert len(rerun) == len(rows) and all(0 <= r["test"]["balanced_accuracy"] <= 1 for r in rerun)


def test_unknown_criterion_fails_before_training(tmp_path: Path) -> None:
    result = runner.invoke(app, ["compare", "--criteria", "l1,beta-rnak", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert "unknown criterion 'beta-rnak'" in result.output
    assert not (tmp_path / "x" / "models").exists()


def test_criterion_variants_run_side_by_side_with_their_options(tmp_path: Path) -> None:
    out = tmp_path / "variants"
    args = ["compare", "--criteria", "beta-rank:beta_mode=code,beta-rank:beta_mode=paper:max_batches=1",
            "--flops-reduction", "0.3", "--seeds", "1", "--no-scratch", "--model", "test_tinycnn", "--epochs", "1",
            "--finetune-epochs", "1", "--max-train", "150", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    # each variant ran with its own options: code mode over every calibration batch, paper mode over one
    code = re.search(r"beta-rank \(code mode\): statistics of \d+ conv\(s\) over (\d+) batch", result.output)
    paper = re.search(r"beta-rank \(paper mode\): statistics of \d+ conv\(s\) over (\d+) batch", result.output)
    assert code and paper and int(code.group(1)) > 1 and int(paper.group(1)) == 1
    rows = json.loads((out / "compare.json").read_text())["rows"]
    assert [r["criterion"] for r in rows] == ["beta-rank:beta_mode=code", "beta-rank:beta_mode=paper:max_batches=1"]


def test_a_bad_criterion_option_fails_before_training(tmp_path: Path) -> None:
    result = runner.invoke(app, ["compare", "--criteria", "l1,beta-rank:beta_mod=paper", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert "criterion 'beta-rank': bad option 'beta_mod'" in result.output
    assert not (tmp_path / "x" / "models").exists()
    result = runner.invoke(app, ["compare", "--criteria", "beta-rank:paper", "--out", str(tmp_path / "y")])
    assert result.exit_code == 2 and "option 'paper' is not key=value" in result.output
