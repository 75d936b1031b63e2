"""The public Python API: the README example runs as written; objects in memory; the CLI calls the same code."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import edgeprune
from edgeprune.config import load_config, option_key, overrides
from edgeprune.data import ArraySource, load_dataset, register
from edgeprune.errors import EdgepruneError

REPO = Path(__file__).resolve().parents[1]


def readme_example() -> str:
    """The first python code block of the README's "Python API" section, exactly as written."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    found = re.search(r"```python\n(.*?)```", section, re.S)
    assert found, "the README's Python API section has no python code block"
    return found.group(1)


@pytest.fixture(scope="module")
def readme_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    cwd = tmp_path_factory.mktemp("readme")
    before = os.getcwd()
    torch_threads = torch.get_num_threads()
    os.chdir(cwd)
    torch.set_num_threads(1)
    try:
        namespace: dict[str, Any] = {"__name__": "readme_example"}
        exec(compile(readme_example(), "README.md", "exec"), namespace)  # noqa: S102 - our own README
    finally:
        os.chdir(before)
        torch.set_num_threads(torch_threads)
    return namespace, cwd


def test_readme_example_builds_and_returns_a_typed_result(readme_run: tuple[dict[str, Any], Path]) -> None:
    namespace, cwd = readme_run
    result = namespace["result"]
    assert isinstance(result, edgeprune.BuildResult)
    assert result.run_dir == Path("runs/python-api") and (cwd / result.report_path).is_file()
    report = json.loads((cwd / result.report_path).read_text())
    assert [s["status"] for s in report["stages"]] == ["done"] * 6
    names = {a.name for a in result.artifacts}
    assert names == {"pruned_tflite_fp32", "pruned_tflite_int8", "dense_tflite_fp32", "dense_tflite_int8"}
    for a in result.artifacts:
        row = next(r for r in report["artifacts"] if r["name"] == a.name)
        assert (cwd / a.path).is_file() and a.size_bytes == (cwd / a.path).stat().st_size == row["size_bytes"]
        assert 0.0 <= a.balanced_accuracy <= 1.0 and a.gate_passed is row["gate_passed"]
    assert result.artifact("pruned_tflite_int8").quantization == "full-int8"
    assert result.exit_code == (3 if report["gate"]["rejected"] else 0)
    # the run records where model and data came from: an in-memory module and arrays, with content hashes
    manifest = json.loads((cwd / result.run_dir / "manifest.json").read_text())
    assert re.fullmatch(r"python:Sequential@[0-9a-f]{12}", manifest["config"]["model"]["name"])
    assert re.fullmatch(r"memory:arrays@[0-9a-f]{12}", manifest["config"]["data"]["source"])
    assert manifest["inputs"]["model_code"]["sha256"].startswith(manifest["config"]["model"]["name"][-12:])
    assert manifest["data"]["class_names"] == ["normal", "mild", "severe"]
    assert abs(report["prune"]["achieved_reduction"] - 0.3) <= 0.02


def test_rebuild_of_an_in_memory_run_says_the_model_was_in_memory(readme_run: tuple[dict[str, Any], Path]) -> None:
    _, cwd = readme_run
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "edgeprune", "rebuild", "runs/python-api"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "in-memory nn.Module of another Python process" in proc.stderr and "edgeprune.build" in proc.stderr
    assert not (cwd / "runs" / "python-api.rebuild").exists()


def test_stage_functions_reuse_the_run(readme_run: tuple[dict[str, Any], Path]) -> None:
    namespace, cwd = readme_run
    run_dir = cwd / "runs" / "python-api"
    before = edgeprune.load_result(run_dir)
    again = edgeprune.export_model(run_dir, precisions=["fp32"])  # same process: the in-memory model resolves
    assert {a.name for a in again.artifacts} == {"pruned_tflite_fp32", "dense_tflite_fp32"}
    assert again.artifact("pruned_tflite_fp32").size_bytes == before.artifact("pruned_tflite_fp32").size_bytes
    with pytest.raises(EdgepruneError, match="precision 'int4' is not supported"):
        edgeprune.export_model(run_dir, precisions=["int4"])
    measurements = edgeprune.profile_model(again.artifact("pruned_tflite_fp32").path, threads=[1], warmup=1, runs=3)
    assert len(measurements) == 1 and measurements[0].latency.p50_ms > 0


def _net(classes: int = 2) -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, classes))


def test_datasets_and_dataloaders_become_pixel_arrays() -> None:
    from torch.utils.data import DataLoader, TensorDataset

    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, size=(20, 8, 8, 3), dtype=np.uint8)
    labels = np.arange(20) % 2
    floats = torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255.0  # what torchvision's ToTensor gives
    dataset = TensorDataset(floats, torch.from_numpy(labels))
    for data in (dataset, DataLoader(dataset, batch_size=6), (floats, labels), (pixels, labels)):
        source = ArraySource.from_data(data, classes=2)
        assert np.array_equal(source.train[0], pixels) and np.array_equal(source.train[1], labels)
    ds = load_dataset(source, seed=0)
    assert set(ds.splits) == {"train", "val", "test"} and ds.class_names == ["class-0", "class-1"]
    assert sum(len(y) for _, y in ds.splits.values()) == 20
    assert load_dataset(register(source)).source_sha256 == source.sha256


def test_bad_in_memory_data_is_one_line_with_a_fix() -> None:
    rng = np.random.default_rng(2)
    with pytest.raises(EdgepruneError, match="look normalised already") as info:
        ArraySource.from_data((rng.normal(size=(4, 3, 8, 8)).astype(np.float32), np.zeros(4, int)))
    assert info.value.fix and "uint8" in info.value.fix
    with pytest.raises(EdgepruneError, match="labels go up to 3 but 2 class names"):
        ArraySource.from_data((np.zeros((4, 8, 8), np.uint8), np.array([0, 1, 2, 3])), classes=["a", "b"])
    with pytest.raises(EdgepruneError, match="has 3 labels for 4 images"):
        ArraySource.from_data((np.zeros((4, 8, 8), np.uint8), np.array([0, 1, 1])))
    with pytest.raises(EdgepruneError, match="given without train data"):
        edgeprune.check(_net(), val=(np.zeros((4, 8, 8), np.uint8), np.zeros(4, int)))


def test_options_take_flag_and_field_names() -> None:
    assert option_key("finetune_epochs") == "finetune.epochs" and option_key("tolerance") == "prune.tolerance"
    assert option_key("prune.tolerance") == "prune.tolerance" and option_key("warmup") == "profile.warmup"
    assert overrides(precisions="fp32, int8") == {"export.precisions": ["fp32", "int8"]}
    with pytest.raises(EdgepruneError, match="unknown option 'epoch'. did you mean 'epochs'"):
        option_key("epoch")
    cfg = load_config(None, overrides(params_reduction=0.4, criterion="beta-rank:beta_mode=paper"))
    assert (cfg.prune.flops_reduction, cfg.prune.params_reduction) == (0.0, 0.4)
    assert cfg.prune.options == {"beta_mode": "paper"}


def test_in_memory_model_preflight() -> None:
    data = (np.zeros((12, 8, 8, 3), np.uint8), np.arange(12) % 2)
    assert edgeprune.check(_net(), train=data, epochs=0) == []
    with pytest.raises(EdgepruneError, match="pretrained does not apply to the in-memory model"):
        edgeprune.check(_net(), train=data, pretrained=True)
    with pytest.raises(EdgepruneError, match="takes no option.*width_mult"):
        edgeprune.check(_net(), train=data, width_mult=0.5)
    with pytest.raises(EdgepruneError, match="with 2 outputs, the data has 3 classes"):
        edgeprune.check(_net(2), train=data, classes=["a", "b", "c"])
    with pytest.raises(EdgepruneError, match="not a torch.nn.Module"):
        edgeprune.check(object(), train=data)


def test_public_names_and_the_prune_package_coexist() -> None:
    import edgeprune.export
    import edgeprune.prune  # noqa: F401 - the packages must not hide the stage functions

    for name in edgeprune.__all__:
        assert getattr(edgeprune, name) is not None
    assert callable(edgeprune.prune_model) and callable(edgeprune.export_model)


def test_the_cli_build_calls_the_api() -> None:
    import inspect

    from edgeprune.cli import build as cli_build

    source = inspect.getsource(cli_build)
    assert "from edgeprune.api import run, run_dir_for" in source and "run_build" not in source
