"""End-to-end `edgeprune build` runs through the real CLI: embedded default and RetinaMNIST."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgeprune.artifacts.tflite import inspect_tflite
from edgeprune.cli import app

runner = CliRunner()
QUICK = ["--epochs", "3", "--finetune-epochs", "2", "--runs", "5", "--threads", "1", "--no-gate"]


def _build(args: list[str]) -> tuple[int, str]:
    result = runner.invoke(app, ["build", *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def embedded_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("embedded") / "run"
    code, output = _build(["--model", "resnet20", "--width-mult", "0.5", "--flops-reduction", "0.5", *QUICK,
                           "--out", str(out)])
    assert code == 0, output
    return out


def test_embedded_build_writes_every_stage_and_artifact(embedded_run: Path) -> None:
    manifest = json.loads((embedded_run / "manifest.json").read_text())
    assert [s["name"] for s in manifest["stages"]] == ["train", "prune", "finetune", "export", "verify", "profile"]
    assert all(s["status"] == "done" for s in manifest["stages"])
    assert manifest["data"]["name"] == "fundus-synth" and len(manifest["data"]["calibration_ids"]) == 128
    for key in ("torch", "torch-pruning", "litert-torch", "ai-edge-litert"):
        assert key in manifest["versions"]
    report = json.loads((embedded_run / "report.json").read_text())
    rows = {r["name"]: r for r in report["artifacts"]}
    assert set(rows) >= {"pruned_tflite_fp32", "pruned_tflite_fp16", "pruned_tflite_dynamic-int8",
                         "pruned_tflite_int8", "dense_tflite_fp32", "dense_tflite_int8"}
    # the budget was met and the exported file really is smaller than the dense one
    prune = report["prune"]
    assert abs(prune["achieved_reduction"] - 0.5) <= 0.02
    assert rows["pruned_tflite_fp32"]["macs"] < 0.52 * rows["dense_tflite_fp32"]["macs"]
    assert rows["pruned_tflite_fp32"]["size_bytes"] < rows["dense_tflite_fp32"]["size_bytes"]
    # fp32 matches torch; every artifact was verified and profiled
    assert rows["pruned_tflite_fp32"]["max_abs_logit_error"] < 1e-3
    assert rows["pruned_tflite_fp32"]["top1_agreement"] == 1.0
    for r in rows.values():
        assert 0.0 <= r["balanced_accuracy"] <= 1.0 and r["gate_passed"] in (True, False)
        assert r["latency_p50_ms"]["host:1t"] > 0 and r["peak_rss_mb"] > 0
    # quantization modes are read back from the files, never taken from the names
    assert rows["pruned_tflite_int8"]["quantization"] == "full-int8"
    assert rows["pruned_tflite_dynamic-int8"]["quantization"] == "dynamic-int8"
    info = inspect_tflite(embedded_run / rows["pruned_tflite_int8"]["file"])
    assert info.inputs[0].dtype == "int8"
    # "pruned but not faster": each precision compared with its own dense twin, never across precisions
    profile = next(s for s in manifest["stages"] if s["name"] == "profile")["summary"]
    pairs = {(e["dense"], e["pruned"]) for e in profile["pruning_efficiency"]}
    assert pairs == {("dense_tflite_fp32", "pruned_tflite_fp32"), ("dense_tflite_int8", "pruned_tflite_int8")}
    for e in profile["pruning_efficiency"]:
        assert abs(e["mac_ratio"] - rows[e["pruned"]]["macs"] / rows[e["dense"]]["macs"]) < 1e-9


def test_rerun_skips_finished_stages(embedded_run: Path) -> None:
    before = json.loads((embedded_run / "manifest.json").read_text())
    code, output = _build(["--model", "resnet20", "--width-mult", "0.5", "--flops-reduction", "0.5", *QUICK,
                           "--out", str(embedded_run)])
    assert code == 0, output
    after = json.loads((embedded_run / "manifest.json").read_text())
    assert [s["status"] for s in after["stages"]] == ["skipped"] * 6
    assert [s["key"] for s in after["stages"]] == [s["key"] for s in before["stages"]]


def test_pruned_checkpoint_and_pt2_reload(embedded_run: Path) -> None:
    import torch

    from edgeprune.models import create_model
    from edgeprune.pipeline.checkpoints import load_checkpoint

    x = torch.zeros(1, 3, 32, 32)
    model, plan = load_checkpoint(embedded_run / "models/finetuned.pt", create_model("resnet20", 5, width_mult=0.5), x)
    assert not plan.is_empty()
    program = torch.export.load(str(embedded_run / "models/finetuned.pt2"))
    probe = torch.randn(1, 3, 32, 32)
    assert torch.allclose(program.module()(probe), model(probe), atol=1e-5)


def test_retinamnist_short_build(tmp_path: Path, retinamnist: Path) -> None:
    out = tmp_path / "retina"
    code, output = _build(["--data", str(retinamnist), "--model", "resnet20", "--width-mult", "0.5",
                           "--max-train", "500", "--precisions", "fp32,int8", "--flops-reduction", "0.5",
                           *QUICK, "--out", str(out)])
    assert code == 0, output
    report = json.loads((out / "report.json").read_text())
    assert report["data"]["name"] == "retinamnist" and report["data"]["sizes"]["test"] == 400
    rows = {r["name"]: r for r in report["artifacts"]}
    assert rows["pruned_tflite_int8"]["quantization"] == "full-int8"
    assert len(rows["pruned_tflite_int8"]["per_class_sensitivity"]) == 5
    contract = json.loads((out / "manifest.json").read_text())["preprocessing"]
    assert contract["gray_to_rgb"] is False and contract["input_size"] == [32, 32]


def test_user_error_is_one_line_without_traceback(tmp_path: Path) -> None:
    out = tmp_path / "bad"
    proc = subprocess.run([sys.executable, "-m", "edgeprune", "build", "--data", str(tmp_path / "missing.npz"),
                           "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "error:" in proc.stderr
    assert len([ln for ln in proc.stderr.strip().splitlines() if ln.strip()]) <= 2
    assert not list(out.glob("artifacts/*"))


def test_gate_failure_exits_non_zero(embedded_run: Path) -> None:
    result = runner.invoke(app, ["verify", str(embedded_run), "--max-bal-acc-drop", "-100",
                                 "--max-class-sensitivity-drop", "-100"])
    assert result.exit_code == 3, result.output
    assert "gate failed" in result.output or "REJECTED" in result.output
    manifest = json.loads((embedded_run / "manifest.json").read_text())
    verify = next(s for s in manifest["stages"] if s["name"] == "verify")
    assert all(not a["gate"]["passed"] for a in verify["summary"]["artifacts"].values())
