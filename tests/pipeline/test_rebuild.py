"""`edgeprune rebuild`: rerun the tiny build from its manifest alone and compare every artifact."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from edgeprune.cli.rebuild import rebuild
from edgeprune.errors import EdgepruneError
from edgeprune.pipeline.context import BuildContext
from edgeprune.pipeline.rebuild import (
    REBUILD_JSON,
    ArtifactCheck,
    _compare_outputs,
    _reasons,
    _version_changes,
    rebuild_run,
)
from edgeprune.rundir.config import config_from_manifest
from edgeprune.rundir.manifest import load_manifest
from tests.report.tiny import tiny_run


@pytest.fixture(scope="session")
def tiny_run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_run(tmp_path_factory)


def _cli() -> typer.Typer:
    app = typer.Typer()
    app.command("rebuild")(rebuild)

    @app.callback()
    def _main() -> None:
        pass

    return app


@pytest.fixture(scope="module")
def rebuilt(tiny_run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("rebuild")
    result = CliRunner().invoke(_cli(), ["rebuild", str(tiny_run_dir), "--out", str(out)])
    return {"out": out, "target": out / tiny_run_dir.name, "result": result}


def test_rebuild_reproduces_every_artifact(tiny_run_dir: Path, rebuilt: dict[str, Any]) -> None:
    result, target = rebuilt["result"], rebuilt["target"]
    assert result.exit_code == 0, result.output
    report = json.loads((target / REBUILD_JSON).read_text())
    original = json.loads((tiny_run_dir / "report.json").read_text())["artifacts"]
    assert [a["name"] for a in report["artifacts"]] == [r["name"] for r in original]
    assert report["reproducible"] is True and report["version_changes"] == {} and report["data_changes"] == []
    for check in report["artifacts"]:
        assert check["verdict"] in ("identical", "within-tolerance")
        assert (check["verdict"] == "identical") == (check["sha256_original"] == check["sha256_rebuilt"])
        assert check["top1_agreement"] is not None and check["max_abs_logit_diff"] is not None
        if check["verdict"] != "identical":
            assert check["reasons"], check  # never "different" without saying why
        assert check["name"] in result.output
    # the rebuild used nothing but the manifest: same config, splits and calibration ids
    old, new = load_manifest(tiny_run_dir), load_manifest(target)
    assert new.config == old.config and new.run_id == old.run_id
    assert new.data["calibration_ids"] == old.data["calibration_ids"]
    assert new.reproducibility["splits"] == old.reproducibility["splits"]
    assert (target / "report.html").is_file()


def test_rebuild_refuses_an_existing_target_and_unfinished_runs(tiny_run_dir: Path, rebuilt: dict[str, Any],
                                                                tmp_path: Path) -> None:
    again = CliRunner().invoke(_cli(), ["rebuild", str(tiny_run_dir), "--out", str(rebuilt["out"])])
    assert again.exit_code == 2 and "already exists" in again.output
    broken = tmp_path / "broken"
    broken.mkdir()
    data = json.loads((tiny_run_dir / "manifest.json").read_text())
    next(s for s in data["stages"] if s["name"] == "verify")["status"] = "failed"
    (broken / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(EdgepruneError, match="not a finished build"):
        rebuild_run(broken, tmp_path / "out")


def test_output_comparison_runs_both_artifacts(tiny_run_dir: Path) -> None:
    manifest = load_manifest(tiny_run_dir)
    x = BuildContext(cfg=config_from_manifest(manifest), run_dir=tiny_run_dir).data.test.read("test").x.numpy()
    pruned, dense = (tiny_run_dir / f"artifacts/{n}_tflite_fp32.tflite" for n in ("pruned", "dense"))
    same = ArtifactCheck(name="same", verdict="?")
    _compare_outputs(same, pruned, pruned, "tflite", x)
    assert (same.max_abs_logit_diff, same.top1_agreement) == (0.0, 1.0)
    other = ArtifactCheck(name="other", verdict="?")
    _compare_outputs(other, pruned, dense, "tflite", x)
    assert other.max_abs_logit_diff > 0 and 0.0 <= other.top1_agreement <= 1.0
    assert np.isfinite(other.max_abs_logit_diff)


def test_reasons_name_versions_and_the_first_stage_that_differs(tiny_run_dir: Path, tmp_path: Path) -> None:
    old = load_manifest(tiny_run_dir)
    new = old.model_copy(deep=True)
    new.versions["torch"] = "9.9.9"
    new.reproducibility["torch_threads"] = (old.reproducibility["torch_threads"] or 1) + 1
    versions = _version_changes(old, new)
    assert versions == {"torch": [old.versions["torch"], "9.9.9"]}
    check = ArtifactCheck(name="pruned_tflite_int8", verdict="within-tolerance")
    chain = ["models/dense.pt", "models/pruned.pt", "models/finetuned.pt"]
    models = {"models/dense.pt": {"weights_identical": True},
              "models/pruned.pt": {"weights_identical": False, "max_weight_diff": 2e-7},
              "models/finetuned.pt": {"weights_identical": False, "max_weight_diff": 5e-6}}
    reasons = _reasons(check, chain, models, versions, [], old, new)
    assert reasons[0].startswith("tool versions differ: torch")
    assert "models/pruned.pt already differs (max weight difference 2e-07)" in reasons[1]
    assert "torch threads" in reasons[1]
    same_models = {rel: {"weights_identical": True} for rel in chain}
    assert "converter output is not deterministic" in _reasons(check, chain, same_models, {}, [], old, old)[0]


def test_relative_paths_resolve_against_the_original_directory(tiny_run_dir: Path, tmp_path: Path) -> None:
    data_file = tmp_path / "project" / "data.npz"
    data_file.parent.mkdir()
    shutil.copyfile(Path(__file__), data_file)  # any existing file: only path resolution is checked here
    manifest = load_manifest(tiny_run_dir).model_copy(deep=True)
    manifest.config["data"]["source"] = "data.npz"
    manifest.invocations[-1].cwd = str(data_file.parent)
    assert config_from_manifest(manifest).data.source == str(data_file)
