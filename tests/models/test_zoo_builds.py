"""Zoo models end to end at their 224 px size, and MedMNIST images upsampled to it.

The default suite builds one 224 px model (ShuffleNetV2: the cheapest graph with the unusual structure, whose
shuffled layers must be listed as unpruned); every zoo model and MONAI's DenseNet121 build in the slow suite.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edgeprune.cli import app
from edgeprune.config import BuildConfig
from edgeprune.data import load_dataset
from edgeprune.models import MODELS, native_input_size
from edgeprune.pipeline.context import prepare_data

pytestmark = pytest.mark.usefixtures("one_torch_thread")

QUICK = ["--epochs", "1", "--finetune-epochs", "1", "--max-train", "64", "--flops-reduction", "0.3",
         "--target", "tflite", "--precisions", "fp32", "--runs", "3", "--threads", "1", "--no-gate"]


@pytest.fixture(scope="module")
def breastmnist() -> Path:
    path = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "breastmnist.npz"
    if not path.is_file():
        pytest.skip(f"real dataset not found at {path} (../shared/data beside the checkout)")
    return path


def _medmnist_plus(path: Path, size: int, rgb: bool) -> Path:
    """A small file in the MedMNIST+ layout: {train,val,test}_{images,labels}, uint8 images of ``size`` px."""
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 24), ("val", 8), ("test", 8)):
        shape = (n, size, size, 3) if rgb else (n, size, size)
        arrays[f"{split}_images"] = rng.integers(0, 256, shape, dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(n) % 2).reshape(n, 1).astype(np.uint8)
    np.savez(path, **arrays)
    return path


def _build(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["build", *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def _input_size(model: str, source: Path, image_size: int | None = None) -> tuple[int, int]:
    cfg = BuildConfig.model_validate({"model": {"name": model}, "data": {"source": str(source),
                                                                          "image_size": image_size}})
    return tuple(prepare_data(cfg).contract.input_size)  # type: ignore[return-value]


@pytest.mark.parametrize("rgb", [False, True])
def test_medmnist_plus_files_load_and_upsample_to_the_model_size(tmp_path: Path, rgb: bool) -> None:
    path = _medmnist_plus(tmp_path / "breastmnist_64.npz", 64, rgb)
    ds = load_dataset(path)
    assert ds.image_size == (64, 64) and ds.channels == (3 if rgb else 1)
    assert ds.class_names == ["malignant", "normal-or-benign"]  # recognised as BreastMNIST by its file stem
    assert _input_size("densenet121", path) == (224, 224)  # ImageNet-style zoo model: its own size
    assert _input_size("densenet121", path, 128) == (128, 128)  # the cheaper option
    assert _input_size("monai:DenseNet121", path) == (224, 224)
    assert _input_size("resnet20", path) == (64, 64)  # CIFAR-style and small-input models keep the data's size
    assert _input_size("mobilenetv2", path) == (64, 64)


def test_native_sizes_of_the_zoo() -> None:
    for name, entry in MODELS.items():
        native = native_input_size(name)
        assert native is None or native == entry.default_input_size >= 128, name
    assert {n for n in MODELS.names() if native_input_size(n)} >= {"densenet121", "resnet18", "resnet50",
                                                                      "mobilenetv3_small", "shufflenetv2"}
    assert native_input_size("path/to/net.py:make") is None


def _check_run(out: Path, size: int) -> dict:
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["preprocessing"]["input_size"] == [size, size]
    report = json.loads((out / "report.json").read_text())
    rows = {r["name"]: r for r in report["artifacts"]}
    fp32 = rows["pruned_tflite_fp32"]
    assert fp32["top1_agreement"] == 1.0 and fp32["max_abs_logit_error"] < 1e-3
    assert fp32["macs"] < rows["dense_tflite_fp32"]["macs"]
    return report


def test_shufflenetv2_builds_at_224_and_lists_its_unpruned_layers(breastmnist: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    code, output = _build(["--model", "shufflenetv2", "--data", str(breastmnist), *QUICK, "--out", str(out)])
    assert code == 0, output
    assert "Traceback" not in output
    report = _check_run(out, 224)  # 28 px BreastMNIST upsampled to the model's 224 px
    unpruned = {u["layer"] for u in report["prune"]["unpruned"]}
    assert "net.stage2.1.branch2.5" in unpruned and len(unpruned) >= 16
    assert not unpruned & set(report["prune"]["widths"])


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in MODELS.names() if not MODELS.get(n).test_only])
def test_every_zoo_model_builds_at_224(name: str, breastmnist: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    code, output = _build(["--model", name, "--data", str(breastmnist), "--image-size", "224", *QUICK,
                           "--out", str(out)])
    assert code == 0, output
    _check_run(out, 224)


@pytest.mark.slow
@pytest.mark.parametrize("model,size", [("monai:DenseNet121", 224), ("densenet121", 128)])
def test_densenet121_builds(model: str, size: int, breastmnist: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    extra = ["--image-size", str(size)] if size != 224 else []
    code, output = _build(["--model", model, "--data", str(breastmnist), *extra, *QUICK, "--out", str(out)])
    assert code == 0, output
    _check_run(out, size)
