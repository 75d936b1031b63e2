"""The bundle of a real build: schema, checksums, real golden inputs, and logits reproduced in ai-edge-litert."""

from __future__ import annotations

import re
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgeprune.artifacts.tflite_metadata import read_tflite_metadata
from edgeprune.config import BuildConfig
from edgeprune.contract import PreprocessContract
from edgeprune.fsutil import read_json, sha256_file
from edgeprune.package import BundleResult, verify_bundle
from edgeprune.pipeline.context import prepare_data
from edgeprune.rundir.manifest import load_manifest
from edgeprune.schemas import BundleModelJson


def _model(bundle: BundleResult) -> BundleModelJson:
    return BundleModelJson.model_validate_json((bundle.dir / "model.json").read_bytes())


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_model_json_follows_the_schema_and_the_run(bundle: BundleResult, built_run: Path) -> None:
    m = _model(bundle)
    manifest = load_manifest(built_run)
    assert m == bundle.model_json
    assert (m.name, m.version, m.app) == ("pkgtest", "1.0.0", "android")
    assert bundle.dir.name == "pkgtest-1.0.0" and bundle.zip.name == "pkgtest-1.0.0.zip"
    # default choice: the pruned full-int8 model first (the one the app runs), then fp32; both passed the gate
    assert [(a.file, a.quantization, a.gate) for a in m.artifacts] == [
        ("pruned_tflite_int8.tflite", "full-int8", "passed"), ("pruned_tflite_fp32.tflite", "none", "passed")]
    assert m.artifacts[0].inputs[0].dtype == "int8" and m.artifacts[0].inputs[0].quant_scale
    contract = PreprocessContract.model_validate(m.preprocessing)
    assert contract.model_dump(exclude={"layout"}) == PreprocessContract.model_validate(
        manifest.preprocessing).model_dump(exclude={"layout"})
    assert contract.layout == m.artifacts[0].inputs[0].layout == "NCHW"
    assert m.class_names == manifest.data["class_names"]
    assert (bundle.dir / "labels.txt").read_text().splitlines() == m.class_names
    assert m.decision_thresholds == {}  # argmax
    assert "not a medical device" in m.intended_use and "diagnosis" in m.intended_use
    assert (bundle.dir / "manifest.json").read_bytes() == (built_run / "manifest.json").read_bytes()
    verify = next(s for s in manifest.stages if s.name == "verify").summary["artifacts"]
    for art in m.artifacts:
        entry = m.metrics[art.file]
        source = verify[entry["artifact"]]["metrics"]
        assert entry["test"]["balanced_accuracy"] == source["balanced_accuracy"]
        assert list(entry["per_class"]) == m.class_names
        sens = [entry["per_class"][c]["sensitivity"] for c in m.class_names]
        assert sens == source["per_class_sensitivity"]
        assert entry["gate"]["status"] == "passed" and entry["gate"]["passed"] is True


def test_every_file_has_a_matching_checksum(bundle: BundleResult) -> None:
    m = _model(bundle)
    on_disk = {p.relative_to(bundle.dir).as_posix() for p in bundle.dir.rglob("*") if p.is_file()}
    assert {f.path for f in m.files} == on_disk - {"model.json"}
    for f in m.files:
        p = bundle.dir / f.path
        assert (sha256_file(p), p.stat().st_size) == (f.sha256, f.size_bytes), f.path
    listed = {f.path: f.sha256 for f in m.files}
    for art in m.artifacts:
        assert listed[art.file] == art.sha256 == sha256_file(bundle.dir / art.file)
        meta = read_tflite_metadata(bundle.dir / art.file)
        assert meta is not None and meta["labels"] == m.class_names
    report = verify_bundle(bundle.dir)
    assert report.ok, report.failures
    assert set(report.checked_files) == {f.path for f in m.files}


def test_golden_samples_are_real_stratified_test_images(bundle: BundleResult, built_run: Path) -> None:
    m = _model(bundle)
    cfg = BuildConfig.model_validate(load_manifest(built_run).config)
    test = prepare_data(cfg).test.read("test")  # the exact tensors the verify stage ran on
    primary = [s for s in m.golden_samples if s.artifact == m.artifacts[0].file]  # every artifact has its own
    assert len(m.golden_samples) == len(m.artifacts) * len(primary)
    counts = Counter(s.label for s in primary)
    support = np.bincount(test.y.numpy(), minlength=len(m.class_names))
    assert dict(counts) == {c: min(2, int(n)) for c, n in enumerate(support) if n}
    contract = PreprocessContract.model_validate(m.preprocessing)
    shape = m.artifacts[0].inputs[0].shape
    for s in m.golden_samples:
        assert s.artifact in {a.file for a in m.artifacts}  # whose logits these are, named
        index = int(re.search(r"test(\d+)_", s.input_file).group(1))
        assert int(test.y[index]) == s.label
        x = np.load(bundle.dir / s.input_file, allow_pickle=False)
        assert x.dtype == np.float32 and list(x.shape) == shape
        np.testing.assert_array_equal(x[0], test.x[index].numpy())
        png = np.array(Image.open(bundle.dir / s.image_file))
        assert png.dtype == np.uint8 and png.shape[:2] == tuple(contract.input_size)
        np.testing.assert_allclose(contract.apply(png[None]), x, atol=1e-6)
        assert s.expected_class == int(np.argmax(s.expected_logits))


def _litert(path: Path, x: np.ndarray) -> np.ndarray:
    """Run like the phone does: quantize the float input with the tensor's parameters, dequantize the output."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path), num_threads=1)
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    if inp["dtype"] == np.int8:
        scale, zero = inp["quantization"]
        x = np.clip(np.round(x / scale) + zero, -128, 127).astype(np.int8)
    it.set_tensor(inp["index"], x)
    it.invoke()
    y = it.get_tensor(out["index"])
    if out["dtype"] == np.int8:
        scale, zero = out["quantization"]
        y = (y.astype(np.float32) - zero) * scale
    return y[0].astype(np.float32)


def test_golden_logits_reproduce_in_litert_within_tolerance(bundle: BundleResult) -> None:
    m = _model(bundle)
    int8, fp32 = m.artifacts
    assert m.golden_samples[0].atol == pytest.approx(int8.outputs[0].quant_scale, rel=0.01)  # one output step
    fp32_golden = m.metrics[fp32.file]["golden"]
    assert fp32_golden["atol"] >= 1e-4
    for s in (s for s in m.golden_samples if s.artifact == int8.file):
        got = _litert(bundle.dir / int8.file, np.load(bundle.dir / s.input_file))
        assert np.max(np.abs(got - np.array(s.expected_logits))) <= s.atol
    for rel, want in zip(fp32_golden["inputs"], fp32_golden["expected_logits"], strict=True):
        got = _litert(bundle.dir / fp32.file, np.load(bundle.dir / rel))
        assert np.max(np.abs(got - np.array(want))) <= fp32_golden["atol"]
    checks = verify_bundle(bundle.dir).golden
    assert len(checks) == len(m.golden_samples) == 2 * len(fp32_golden["inputs"]) and all(c.passed for c in checks)


def test_zip_holds_the_same_files(bundle: BundleResult) -> None:
    from edgeprune.server.bundlezip import inspect_bundle

    with zipfile.ZipFile(bundle.zip) as zf:
        assert {i.filename: zf.read(i) for i in zf.infolist()} == _tree(bundle.dir)
        assert all(i.compress_type == zipfile.ZIP_STORED for i in zf.infolist() if i.filename.endswith(".tflite"))
    assert verify_bundle(bundle.zip).ok
    assert inspect_bundle(bundle.zip, max_uncompressed=1 << 30).model.version == "1.0.0"  # the backend accepts it


def test_into_copies_the_bundle_into_the_app_assets(bundle: BundleResult) -> None:
    assert bundle.into is not None and bundle.into.name == "bundle"
    assert _tree(bundle.into) == _tree(bundle.dir)
    assert verify_bundle(bundle.into).ok
    assert read_json(bundle.into / "model.json")["version"] == "1.0.0"
