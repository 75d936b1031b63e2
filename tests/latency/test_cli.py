"""`edgeprune prune/build --latency-reduction` through the real CLI; the refusals are one-line errors, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgeprune.cli import app
from edgeprune.config import load_config, overrides
from edgeprune.errors import EdgepruneError
from edgeprune.preflight import check_build

runner = CliRunner()
LATNET = str(Path(__file__).with_name("_latnet.py")) + ":latnet"


def _cli(args: list[str]) -> tuple[int, str]:
    result = runner.invoke(app, args)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


@pytest.mark.parametrize(("extra", "words"), [
    (["--latency-device", "qemu-arm64"], ["qemu-arm64", "not meaningful", "--latency-device host"]),
    (["--device", "qemu-arm64"], ["cannot be a latency source", "adb"]),
    (["--flops-reduction", "0.5"], ["not both", "--latency-reduction"]),
    (["--iterative-steps", "3"], ["single-shot", "--iterative-steps"]),
])  # fmt: skip
def test_refusals_exit_2_before_any_work(tmp_path: Path, extra: list[str], words: list[str]) -> None:
    out = tmp_path / "run"
    code, output = _cli(["build", "--model", "test_tinycnn", "--latency-reduction", "0.4", *extra,
                         "--out", str(out)])
    assert code == 2, output
    text = " ".join(output.split())
    assert all(w in text for w in words), output
    assert not out.exists()  # refused in pre-flight: no partial run directory


def test_preflight_refuses_the_emulated_lane_directly() -> None:
    cfg = load_config(None, overrides(model="test_tinycnn", latency_reduction=0.4, latency_device="qemu-arm64"))
    with pytest.raises(EdgepruneError, match="not meaningful"):
        check_build(cfg)
    assert check_build(load_config(None, overrides(model="test_tinycnn", latency_reduction=0.4))) is not None


def test_cli_prune_with_a_latency_budget(tmp_path: Path, latency_cache: Path) -> None:
    out, config = tmp_path / "run", tmp_path / "edgeprune.toml"
    config.write_text("[train]\nepochs = 1\n[data]\nmax_train = 300\n")
    code, output = _cli(["prune", "--config", str(config), "--model", LATNET, "--image-size", "32",
                         "--finetune-epochs", "1", "--latency-reduction", "0.35", "--latency-device", "host",
                         "--out", str(out)])
    assert code == 0, output
    assert "latency reduction" in output
    report = json.loads((out / "report.json").read_text())
    prune = report["prune"]
    assert prune["budget"]["kind"] == "latency" and prune["budget"]["reduction"] == 0.35
    lat = prune["latency"]
    assert lat["device"] == "host" and lat["measured_ms"] < lat["dense_ms"]
    assert prune["achieved_reduction"] == pytest.approx(1 - lat["measured_ms"] / lat["dense_ms"], abs=1e-3)
    assert all(w["after"] % lat["channel_multiple"] == 0 for w in prune["widths"].values())
    assert report["config"]["prune"]["latency_reduction"] == 0.35


def test_python_api_takes_the_latency_budget() -> None:
    import inspect

    import edgeprune

    for fn in (edgeprune.build, edgeprune.prune_model):
        assert inspect.signature(fn).parameters["latency_reduction"].default is None
    with pytest.raises(EdgepruneError, match="not meaningful"):
        edgeprune.check(model="test_tinycnn", latency_reduction=0.4, devices=["qemu-arm64"])
    with pytest.raises(EdgepruneError, match="not both"):
        edgeprune.check(model="test_tinycnn", latency_reduction=0.4, flops_reduction=0.3)


@pytest.mark.slow
def test_cli_build_with_a_latency_budget(tmp_path: Path, latency_cache: Path) -> None:
    out, config = tmp_path / "run", tmp_path / "edgeprune.toml"
    config.write_text("[train]\nepochs = 1\n[data]\nmax_train = 300\n")
    code, output = _cli(["build", "--config", str(config), "--model", LATNET, "--image-size", "32",
                         "--finetune-epochs", "1", "--latency-reduction", "0.35", "--device", "host",
                         "--precisions", "fp32", "--threads", "1", "--runs", "10", "--no-gate", "--out", str(out)])
    assert code == 0, output
    report = json.loads((out / "report.json").read_text())
    lat = report["prune"]["latency"]
    assert report["prune"]["budget"]["kind"] == "latency" and lat["device"] == "host"
    rows = {r["name"]: r for r in report["artifacts"]}
    # the profile stage, timing the exported files separately, sees the pruned model faster too
    pruned, dense = (rows[f"{v}_tflite_fp32"]["latency_p50_ms"]["host:1t"] for v in ("pruned", "dense"))
    assert pruned < dense
