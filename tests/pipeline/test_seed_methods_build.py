"""`edgeprune build --target tflite --criterion <seed method>` end to end through the real CLI.

Each seed method runs the whole pipeline on a tiny residual model (so the coupled residual stream is pruned as
one group): train, prune with the method, recover, export fp32 + full int8, verify in ai-edge-litert, profile.
The method's own record (its mode, mask or width selection) must reach report.json.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from edgeprune.cli import app
from tests.report.tiny import write_tiny_toml

runner = CliRunner()

METHODS = {
    "beta-rank": ["--option", "beta_mode=code"],
    "precropping": ["--option", "density_source=synflow"],
    "masksparsity": ["--option", "sparse_epochs=2", "--option", "lam=0.5"],
}


@pytest.fixture(scope="module", params=sorted(METHODS))
def seed_build(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict, str]:
    method = request.param
    base = tmp_path_factory.mktemp(method)
    out = base / "run"
    config = write_tiny_toml(base, export_dense=False)
    result = runner.invoke(app, ["build", "--target", "tflite", "--config", str(config),
                                 "--model", "test_resblock", "--criterion", method, *METHODS[method],
                                 "--flops-reduction", "0.4", "--no-gate", "--out", str(out)])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return method, json.loads((out / "report.json").read_text()), result.output


def test_every_stage_ran_and_both_artifacts_verified(seed_build: tuple[str, dict, str]) -> None:
    method, report, _ = seed_build
    prune = report["prune"]
    assert prune["criterion"] == method
    assert abs(prune["achieved_reduction"] - 0.4) <= 0.05
    assert prune["macs"]["pruned"] < prune["macs"]["dense"]
    # the per-layer widths are saved, and at least one coupled layer really lost channels
    assert any(w["after"] < w["before"] for w in prune["widths"].values())
    rows = {r["name"]: r for r in report["artifacts"]}
    assert set(rows) == {"pruned_tflite_fp32", "pruned_tflite_int8"}
    assert rows["pruned_tflite_fp32"]["max_abs_logit_error"] < 1e-3
    assert rows["pruned_tflite_int8"]["quantization"] == "full-int8"
    for r in rows.values():
        assert r["latency_p50_ms"]["host:1t"] > 0 and 0.0 <= r["balanced_accuracy"] <= 1.0


def test_method_record_reaches_the_report(seed_build: tuple[str, dict, str]) -> None:
    method, report, output = seed_build
    prune = report["prune"]
    removed = sum(w["before"] - w["after"] for w in prune["widths"].values())
    if method == "beta-rank":
        assert prune["recovery"] == "finetune"
        assert "beta-rank (code mode): statistics of" in output  # streamed over the calibration batches
    elif method == "precropping":
        # width selection at initialization: trained from scratch, and the saved training cost is reported
        assert prune["recovery"] == "train-from-scratch"
        assert prune["label"].startswith("width selection at initialization")
        assert prune["density_source"] == "synflow"
        cost = prune["training_cost"]
        assert cost["ratio"] == pytest.approx(prune["macs"]["pruned"] / prune["macs"]["dense"], abs=1e-3)
        assert cost["dense_training_needed"] is False
    else:
        # the masked channels are exactly the removed ones, and the γ check was recorded
        assert prune["recovery"] == "finetune"
        assert prune["sparse_epochs"] <= 2 and prune["lam"] == 0.5
        assert sum(prune["mask"].values()) == removed
        stats = prune["gamma_stats"]
        assert stats["converged"] == (stats["pruned_above_threshold"] == 0)
        if not stats["converged"]:
            assert any("did not converge" in n for n in prune["notes"])
